package dev.moelora.model.tiedlora;

import dev.moelora.model.lora.LoraConfig;
import java.util.List;
import java.util.Map;

/**
 * Which modules get a Tied-LoRA (Renduchintala et al., arXiv 2311.09578) and which of its four
 * factors are tied across layers and trained. Targets match module names with PEFT's semantics,
 * exactly as {@link LoraConfig#matches} does.
 *
 * <p>Presets, per module type with L layers (d_in, d_out the module's shapes, r the rank).
 * "tied" = one tensor per module type shared by all layers, "layer" = one per layer;
 * a frozen u or v is the constant 1 and is not stored at all.
 * <pre>
 * preset  A             B             u            v            trainable parameters
 * lora    layer, train  layer, train  1            1            L·r·(d_in + d_out)
 * vera    tied, frozen  tied, frozen  train (0.1)  train (0)    L·(r + d_out)
 * tl1     tied, frozen  tied, train   1            1            r·d_out
 * tl2     tied, frozen  tied, train   train (1)    1            r·d_out + L·r
 * tl3     tied, frozen  tied, train   1            train (1)    r·d_out + L·d_out
 * tl4     tied, frozen  tied, train   train (1)    train (1)    r·d_out + L·(r + d_out)
 * tl5     tied, train   tied, train   1            1            r·(d_in + d_out)
 * tl6     tied, train   tied, train   train (1)    train (1)    r·(d_in + d_out) + L·(r + d_out)
 * </pre>
 * lora, vera, tl5 and tl6 are the paper's (and DESIGN.md's). <b>TL1–TL4 are our reading, not
 * confirmed from the paper</b>: its Table 1 could not be consulted when this was written, so they
 * are defined as the remaining combinations with a tied frozen random A (a fixed random
 * projection, as in VeRA and LoRA-FA) and a tied trained B, crossed with trained or constant u, v.
 *
 * <p>Initialisation: A is Kaiming-uniform U(±1/sqrt(d_in)); a trained B starts at zero; VeRA's
 * frozen B is Kaiming-uniform U(±1/sqrt(r)) and its v ("b") starts at 0, its u ("d") at 0.1 as in
 * PEFT's VeRA. Every preset therefore leaves step 0 equal to the base model.
 *
 * @param preset         {@code adapter.preset}: one of {@link #PRESETS}' keys
 * @param rank           {@code adapter.rank}, r
 * @param alpha          {@code adapter.alpha}; the scale is alpha / r
 * @param dropout        {@code adapter.dropout} on the adapter branch's input during training, in [0, 1)
 * @param targets        {@code adapter.targets}, PEFT-style module names or {@code re:} patterns
 * @param shareAcrossQkv {@code adapter.share-a-across-qkv}: one A for the query, key and value
 *                       modules of a layer (of all layers when A is tied), as NeMo's fused QKV
 */
public record TiedLoraConfig(String preset, int rank, double alpha, double dropout, List<String> targets, boolean shareAcrossQkv) {

    /**
     * What a preset ties, trains and how it starts. A trained u or v starts at uInit / vInit; a
     * frozen one is the constant 1. A frozen B is random, a trained one zero.
     */
    public record Components(boolean tieA, boolean trainA, boolean tieB, boolean trainB,
                             boolean trainU, double uInit, boolean trainV, double vInit) {}

    public static final Map<String, Components> PRESETS = Map.of(
            "lora", new Components(false, true, false, true, false, 1, false, 1),
            "vera", new Components(true, false, true, false, true, 0.1, true, 0),
            "tl1", new Components(true, false, true, true, false, 1, false, 1),
            "tl2", new Components(true, false, true, true, true, 1, false, 1),
            "tl3", new Components(true, false, true, true, false, 1, true, 1),
            "tl4", new Components(true, false, true, true, true, 1, true, 1),
            "tl5", new Components(true, true, true, true, false, 1, false, 1),
            "tl6", new Components(true, true, true, true, true, 1, true, 1));

    public TiedLoraConfig {
        if (preset == null || !PRESETS.containsKey(preset)) {
            throw new IllegalArgumentException("adapter.preset must be one of " + new java.util.TreeSet<>(PRESETS.keySet())
                    + ", got '" + preset + "'");
        }
        targets = new LoraConfig(rank, alpha, dropout, targets).targets(); // validates rank, dropout, targets
    }

    public Components components() {
        return PRESETS.get(preset);
    }

    public double scale() {
        return alpha / rank;
    }

    /** PEFT's target matching, the same code LoRA uses. */
    public boolean matches(String moduleName) {
        return new LoraConfig(rank, alpha, dropout, targets).matches(moduleName);
    }

}
