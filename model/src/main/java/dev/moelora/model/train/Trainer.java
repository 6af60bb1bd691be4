package dev.moelora.model.train;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.Task;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.task.TaskModel;
import java.util.List;

/**
 * The single-process training loop: micro-batches from the sampler, gradient accumulation,
 * global-norm clipping, the learning-rate schedule and AdamW. It reports every step to a
 * listener and does no I/O of its own.
 */
public final class Trainer {
    /**
     * What one optimizer step did, as means over its micro-batches: {@code loss} is what was
     * minimised, the task loss plus the adapters' auxiliary losses ({@code auxLoss}, e.g.
     * MoELoRA's weighted balance and contrastive terms).
     */
    public record StepMetrics(int step, int steps, double loss, double auxLoss, double lr, double gradNorm, int tokens, double seconds) {
        public double taskLoss() { return loss - auxLoss; }
    }

    public interface Listener {
        void onStep(StepMetrics metrics);
    }

    private final TaskModel model;
    private final Adapters adapters;
    private final TrainConfig config;
    private final ExampleSampler sampler;
    private final OptimizerStep optimizerStep;
    private int step;

    /** Trains the model's adapters and heads. */
    public Trainer(TaskModel model, List<Task> tasks, TrainConfig config) {
        this.model = model;
        this.adapters = model.adapters();
        List<Parameter> all = new java.util.ArrayList<>(adapters.parameters());
        all.addAll(model.heads().parameters());
        this.config = config;
        this.optimizerStep = new OptimizerStep(adapters, all, config);
        this.sampler = new ExampleSampler(tasks, config.seed());
    }

    public AdamW optimizer() { return optimizerStep.optimizer(); }
    public List<Parameter> parameters() { return optimizerStep.parameters(); }
    public ExampleSampler sampler() { return sampler; }
    public int step() { return step; }

    /** Continues from a saved state: the optimizer moments, the step and the data cursor. */
    public void resume(int step) {
        if (step < 0 || step > config.steps()) throw new IllegalArgumentException("resume step " + step + " is outside [0, " + config.steps() + "]");
        this.step = step;
    }

    /** Runs the remaining steps up to {@code until} (exclusive upper bound on the step count). */
    public void run(int until, Listener listener) {
        setTraining(true);
        for (; step < Math.min(until, config.steps()); step++) {
            listener.onStep(optimizerStep.run(step, m -> {
                TaskModel.Outcome o = model.trainStep(sampler.next(config.batchSize()), 1.0 / config.gradAccum());
                return new OptimizerStep.Outcome(o.loss(), o.tokens());
            }));
        }
        setTraining(false);
    }

    /**
     * The seed of every adapter stream (dropout masks, feature sampling) in micro-batch {@code micro}
     * of step {@code step}: a function of (seed, step, micro-batch), not of how many steps this
     * process ran nor of which router runs the micro-batch.
     */
    public static long microBatchSeed(long seed, int step, int micro) {
        return seed * 1_000_003L + step + micro * 0x9E3779B97F4A7C15L;
    }

    private void setTraining(boolean training) {
        adapters.setTraining(training);
    }
}
