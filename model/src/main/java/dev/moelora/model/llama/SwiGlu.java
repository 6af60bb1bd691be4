package dev.moelora.model.llama;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Sigmoid;
import org.nd4j.linalg.factory.Nd4j;

/**
 * LLaMA's gated feed-forward activation, forward and backward side by side:
 * {@code y = silu(gate) * up}, silu(g) = g * sigmoid(g). The MLP is {@code down(y)} with
 * {@code gate} and {@code up} the outputs of two projections of the same input. Stateless; it
 * writes only into the buffers it is given.
 */
public final class SwiGlu {
    private SwiGlu() {}

    /**
     * @param gate, up (N, F)
     * @param y        (N, F) out
     * @param sig      (N, F) scratch
     */
    public static void forward(INDArray gate, INDArray up, INDArray y, INDArray sig) {
        Nd4j.exec(new Sigmoid(gate, sig));
        y.assign(gate).muli(sig).muli(up);
    }

    /**
     * dup = dy * silu(g); dgate = dy * up * sig * (1 + g * (1 - sig)).
     *
     * @param dgate, dup (N, F) out, overwritten
     * @param sig        (N, F) scratch
     */
    public static void backward(INDArray dy, INDArray gate, INDArray up, INDArray dgate, INDArray dup, INDArray sig) {
        Nd4j.exec(new Sigmoid(gate, sig));
        dup.assign(gate).muli(sig).muli(dy);
        dgate.assign(sig).rsubi(1.0).muli(gate).addi(1.0).muli(sig).muli(up).muli(dy);
    }
}
