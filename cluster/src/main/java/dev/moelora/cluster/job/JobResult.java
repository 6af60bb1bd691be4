package dev.moelora.cluster.job;

import dev.moelora.model.train.Evaluation;
import java.nio.file.Path;
import java.util.List;

/**
 * What a finished training run reports, whatever job ran it: where it wrote, the adapter it
 * trained (its description and trainable parameters, task heads included), the evaluation, the
 * speed and every step's loss.
 */
public record JobResult(Path runDir, String adapter, List<Evaluation.TaskScore> scores, long trainableParameters,
                        double tokensPerSecond, double trainSeconds, double wallSeconds, List<Double> losses) {}
