package dev.moelora.model.train;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.LrSchedule;
import dev.moelora.model.optim.Parameter;
import java.util.List;

/**
 * One optimizer step over micro-batches, the same for every single-process trainer (encoder tasks,
 * decoder instructions): zeroed gradients, per-micro-batch adapter seeds and auxiliary-loss scale,
 * gradient slots summed in micro-batch order, the losses summed in that order, a finiteness check,
 * global-norm clipping, the schedule's learning rate and AdamW. What a micro-batch is — which
 * examples, which model, which loss — is the caller's; this class never sees data.
 */
public final class OptimizerStep {
    /** A micro-batch's forward and backward, gradients scaled by 1 / micro-batches. */
    @FunctionalInterface
    public interface MicroBatch {
        /** Runs micro-batch {@code micro}; returns its task loss (unscaled) and how many tokens it held. */
        Outcome run(int micro);
    }

    public record Outcome(double loss, int tokens) {}

    private final Adapters adapters;
    private final List<Parameter> params;
    private final TrainConfig config;
    private final AdamW optimizer;
    private final LrSchedule schedule;
    private final MicroBatchGradients accumulation; // null without gradient accumulation

    public OptimizerStep(Adapters adapters, List<Parameter> params, TrainConfig config) {
        this.adapters = adapters;
        this.params = List.copyOf(params);
        this.config = config;
        this.optimizer = AdamW.withDefaults(this.params, config.weightDecay());
        this.schedule = config.schedule();
        this.accumulation = config.gradAccum() > 1 ? new MicroBatchGradients(this.params, config.gradAccum()) : null;
    }

    public AdamW optimizer() { return optimizer; }
    public List<Parameter> parameters() { return params; }

    /** Step {@code step} (0-based) over train.grad-accum micro-batches; returns what it did. */
    public Trainer.StepMetrics run(int step, MicroBatch micro) {
        long start = System.nanoTime();
        optimizer.zeroGrad();
        double loss = 0, aux = 0;
        int tokens = 0;
        adapters.setAuxiliaryLossScale(1.0 / config.gradAccum());
        for (int m = 0; m < config.gradAccum(); m++) {
            adapters.reseed(Trainer.microBatchSeed(config.seed(), step, m));
            Outcome o = micro.run(m);
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
        double norm = optimizer.clipGradients(config.clipNorm());
        double lr = schedule.at(step);
        optimizer.step(lr);
        return new Trainer.StepMetrics(step + 1, config.steps(), loss, aux, lr, norm, tokens, (System.nanoTime() - start) / 1e9);
    }
}
