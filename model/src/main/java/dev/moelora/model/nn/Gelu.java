package dev.moelora.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The exact (erf) GELU that BERT uses, {@code y = x * Phi(x)}, forward and backward. Not the
 * tanh or sigmoid approximations: parity with the ONNX graph depends on it.
 */
public final class Gelu {
    private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);
    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);

    private Gelu() {}

    /** @param cdf (same shape) receives Phi(x), kept for backward */
    public static void forward(INDArray x, INDArray y, INDArray cdf) {
        cdf.assign(x).muli(INV_SQRT2);
        Nd4j.exec(new Erf(cdf, cdf));
        cdf.addi(1.0).muli(0.5);
        y.assign(x).muli(cdf);
    }

    /** dx = dy * (Phi(x) + x * phi(x)). dx must not alias dy. */
    public static void backward(INDArray dy, INDArray x, INDArray cdf, INDArray dx) {
        dx.assign(x).muli(x).muli(-0.5);
        Transforms.exp(dx, false);
        dx.muli(INV_SQRT_2PI).muli(x).addi(cdf).muli(dy);
    }
}
