package dev.moelora.model.adapter;

import dev.moelora.model.nn.Linear;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * An adapted layer whose adapter is a fixed linear map, so it folds into the frozen weight:
 * {@code base(x) + adapter(x) = x (W + ΔW)^T} for every x. LoRA and Tied-LoRA are; MoELoRA is
 * not (each token's router picks its own experts, so no single ΔW equals it) and does not
 * implement this. Computing ΔW never changes the layer or its base.
 */
public interface Foldable extends Linear {
    /** The frozen layer the adapter decorates. */
    Linear base();

    /** ΔW (dOut, dIn) in double, computed from the adapter's current tensors. */
    INDArray weightDelta();
}
