package dev.moelora.model.train;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.Task;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.LrSchedule;
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
    private final List<Parameter> params;
    private final TrainConfig config;
    private final AdamW optimizer;
    private final ExampleSampler sampler;
    private final LrSchedule schedule;
    private final MicroBatchGradients accumulation; // null without gradient accumulation
    private int step;

    /** Trains the model's adapters and heads. */
    public Trainer(TaskModel model, List<Task> tasks, TrainConfig config) {
        this.model = model;
        this.adapters = model.adapters();
        List<Parameter> all = new java.util.ArrayList<>(adapters.parameters());
        all.addAll(model.heads().parameters());
        this.params = List.copyOf(all);
        this.config = config;
        this.optimizer = AdamW.withDefaults(this.params, config.weightDecay());
        this.sampler = new ExampleSampler(tasks, config.seed());
        this.schedule = config.schedule();
        this.accumulation = config.gradAccum() > 1 ? new MicroBatchGradients(this.params, config.gradAccum()) : null;
    }

    public AdamW optimizer() { return optimizer; }
    public List<Parameter> parameters() { return params; }
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
            long start = System.nanoTime();
            for (Parameter p : params) p.zeroGrad();
            double loss = 0, aux = 0;
            int tokens = 0;
            adapters.setAuxiliaryLossScale(1.0 / config.gradAccum());
            for (int m = 0; m < config.gradAccum(); m++) {
                adapters.reseed(microBatchSeed(config.seed(), step, m));
                TaskModel.Outcome o = model.trainStep(sampler.next(config.batchSize()), 1.0 / config.gradAccum());
                double microAux = adapters.takeAuxiliaryLoss();
                loss += (o.loss() + microAux) / config.gradAccum();
                aux += microAux / config.gradAccum();
                tokens += o.tokens();
                if (accumulation != null) accumulation.capture(m);
            }
            if (accumulation != null) accumulation.reduce(config.gradAccum());
            if (!Double.isFinite(loss)) {
                throw new IllegalStateException("loss became " + loss + " at step " + step + "; lower train.lr or enable train.clip-norm");
            }
            double norm = AdamW.clipGlobalNorm(params, config.clipNorm());
            double lr = schedule.at(step);
            optimizer.step(lr);
            listener.onStep(new StepMetrics(step + 1, config.steps(), loss, aux, lr, norm, tokens, (System.nanoTime() - start) / 1e9));
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
