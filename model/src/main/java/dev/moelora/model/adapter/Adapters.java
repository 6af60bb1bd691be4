package dev.moelora.model.adapter;

import dev.moelora.model.optim.Parameter;
import java.util.List;

/**
 * An adapter family applied to a model (LoRA, Tied-LoRA, MoELoRA): what the trainer needs from
 * it, whatever its modules are. Implementations decorate the model's linear layers; they never
 * modify the base weights.
 */
public interface Adapters {
    /** No adapter: only the heads train (a linear probe on the frozen model). */
    Adapters NONE = new Adapters() {
        @Override public List<Parameter> parameters() { return List.of(); }
        @Override public void setTraining(boolean training) {}
        @Override public void reseed(long seed) {}
        @Override public String describe() { return "none (frozen base, heads only)"; }
    };

    /** Every trainable tensor, once each (tied tensors appear once), in a stable order. */
    List<Parameter> parameters();

    /** The number of trainable scalars: the sum of {@link #parameters()}' sizes. */
    default long trainableParameters() {
        long n = 0;
        for (Parameter p : parameters()) n += p.size();
        return n;
    }

    /** The seed of module {@code index} in a step seeded {@code stepSeed}: one rule for every family. */
    static long moduleSeed(long stepSeed, int index) {
        return stepSeed * 8_191L + index;
    }

    /** Training enables dropout and sampling; evaluation disables them. */
    void setTraining(boolean training);

    /** Restarts every random stream (dropout, feature sampling) for one step, so a resumed run draws the same. */
    void reseed(long seed);

    /**
     * Loss terms the modules add on their own (MoELoRA's balance and contrastive losses), summed
     * over the forwards since the last call, then reset. Their gradients are added by the modules'
     * backward, scaled by {@link #setAuxiliaryLossScale}. Zero for families without such terms.
     */
    default double takeAuxiliaryLoss() {
        return 0;
    }

    /**
     * Which rows of the next forward are real tokens (1) and which are padding (0), row = b * T + t;
     * null when all are real. Families with token-level statistics or losses (MoELoRA's routing)
     * count real tokens only.
     */
    default void setRowMask(float[] mask) {}

    /** The factor the task loss's gradient carries in this micro-batch (1 / gradient-accumulation steps). */
    default void setAuxiliaryLossScale(double scale) {}

    /** A setting as people write it in a description: 16 rather than 16.0, 0.05 as it is. */
    static String number(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }

    /** One line for the run header, e.g. "LoRA r=8 alpha=16 dropout=0.05 on 12 modules [query, value]". */
    String describe();
}
