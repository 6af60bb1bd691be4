package dev.moelora.model.train;

import dev.moelora.model.optim.LrSchedule;

/**
 * The optimisation settings of one run (config keys under {@code train.}).
 *
 * @param steps          optimizer steps
 * @param batchSize      examples per micro-batch
 * @param gradAccum      micro-batches per optimizer step
 * @param clipNorm       global gradient-norm clip; 0 disables it
 * @param evalBatchSize  examples per evaluation batch
 */
public record TrainConfig(int steps, int batchSize, int gradAccum, double lr, int warmupSteps, LrSchedule.Decay decay,
                          double weightDecay, double clipNorm, long seed, int evalBatchSize) {
    public TrainConfig {
        if (steps < 1) throw new IllegalArgumentException("train.steps must be >= 1, got " + steps);
        if (batchSize < 1) throw new IllegalArgumentException("train.batch-size must be >= 1, got " + batchSize);
        if (gradAccum < 1) throw new IllegalArgumentException("train.grad-accum must be >= 1, got " + gradAccum);
        if (!(lr > 0)) throw new IllegalArgumentException("train.lr must be > 0, got " + lr);
        if (weightDecay < 0) throw new IllegalArgumentException("train.weight-decay must be >= 0, got " + weightDecay);
        if (clipNorm < 0) throw new IllegalArgumentException("train.clip-norm must be >= 0, got " + clipNorm);
        if (warmupSteps < 0 || warmupSteps > steps) {
            throw new IllegalArgumentException("train.warmup-steps must be in [0, train.steps = " + steps + "], got " + warmupSteps);
        }
        if (evalBatchSize < 1) throw new IllegalArgumentException("train.eval-batch-size must be >= 1, got " + evalBatchSize);
    }

    public LrSchedule schedule() {
        return new LrSchedule(lr, warmupSteps, steps, decay);
    }
}
