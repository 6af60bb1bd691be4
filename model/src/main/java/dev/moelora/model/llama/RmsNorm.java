package dev.moelora.model.llama;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * RMSNorm over the channels of each row, forward and backward side by side, as Hugging Face's
 * LlamaRMSNorm: {@code y = w * x / sqrt(mean(x^2) + eps)} (no mean subtraction, no bias). The
 * weight is frozen: backward returns only dL/dx and never computes a weight gradient. Row means
 * are GEMMs against a column of 1/C (faster in ND4J than its reductions, and they write into
 * preallocated outputs).
 */
public final class RmsNorm {
    private final double eps;
    private final INDArray meanColumn; // (C, 1) filled with 1/C

    public RmsNorm(long channels, double eps, DataType dtype) {
        this.eps = eps;
        this.meanColumn = Nd4j.valueArrayOf(new long[] {channels, 1}, 1.0 / channels, dtype);
    }

    /**
     * @param x    (N, C) input, left untouched
     * @param w    (1, C) weight
     * @param y    (N, C) out
     * @param xhat (N, C) out: x * rstd, kept for backward
     * @param rstd (N, 1) out: 1 / sqrt(mean(x^2) + eps), kept for backward
     */
    public void forward(INDArray x, INDArray w, INDArray y, INDArray xhat, INDArray rstd) {
        xhat.assign(x).muli(x);
        Nd4j.gemm(xhat, meanColumn, rstd, false, false, 1.0, 0.0);
        rstd.addi(eps);
        Transforms.sqrt(rstd, false);
        rstd.rdivi(1.0);
        xhat.assign(x).muliColumnVector(rstd);
        y.assign(xhat).muliRowVector(w);
    }

    /**
     * dx = rstd * (g - xhat * mean(g * xhat)), with g = dy * w.
     *
     * @param dx (N, C) out, overwritten; must not alias dy
     * @param g  (N, C) scratch
     * @param a  (N, 1) scratch
     */
    public void backward(INDArray dy, INDArray w, INDArray xhat, INDArray rstd, INDArray dx, INDArray g, INDArray a) {
        g.assign(dy).muliRowVector(w);
        dx.assign(g).muli(xhat);
        Nd4j.gemm(dx, meanColumn, a, false, false, 1.0, 0.0);
        dx.assign(xhat).muliColumnVector(a).rsubi(g).muliColumnVector(rstd);
    }
}
