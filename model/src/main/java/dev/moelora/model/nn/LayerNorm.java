package dev.moelora.model.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * LayerNorm over the channels of each row, forward and backward side by side:
 * {@code y = gamma * (x - mean) / sqrt(var + eps) + beta}. Gamma and beta are frozen base
 * weights, so backward returns only dL/dx. Row means are GEMMs against a column of 1/C, which
 * is faster in ND4J than its reductions and writes into preallocated outputs.
 */
public final class LayerNorm {
    private final double eps;
    private final INDArray meanColumn; // (C, 1) filled with 1/C

    public LayerNorm(long channels, double eps, DataType dtype) {
        this.eps = eps;
        this.meanColumn = Nd4j.valueArrayOf(new long[] {channels, 1}, 1.0 / channels, dtype);
    }

    /**
     * @param x     (N, C) input, left untouched
     * @param y     (N, C) output
     * @param xhat  (N, C) normalised input, kept for backward
     * @param rstd  (N, 1) 1/sqrt(var + eps), kept for backward
     * @param mean  (N, 1) scratch
     */
    public void forward(INDArray x, INDArray gamma, INDArray beta, INDArray y, INDArray xhat,
                        INDArray rstd, INDArray mean) {
        Nd4j.gemm(x, meanColumn, mean, false, false, 1.0, 0.0);
        xhat.assign(x).subiColumnVector(mean);
        y.assign(xhat).muli(xhat);
        Nd4j.gemm(y, meanColumn, rstd, false, false, 1.0, 0.0);
        rstd.addi(eps);
        Transforms.sqrt(rstd, false);
        rstd.rdivi(1.0);
        xhat.muliColumnVector(rstd);
        y.assign(xhat).muliRowVector(gamma).addiRowVector(beta);
    }

    /**
     * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = dy * gamma.
     *
     * @param g  (N, C) scratch
     * @param a  (N, 1) scratch
     * @param b  (N, 1) scratch
     */
    public void backward(INDArray dy, INDArray gamma, INDArray xhat, INDArray rstd, INDArray dx,
                         INDArray g, INDArray a, INDArray b) {
        g.assign(dy).muliRowVector(gamma);
        Nd4j.gemm(g, meanColumn, a, false, false, 1.0, 0.0);
        dx.assign(g).muli(xhat);
        Nd4j.gemm(dx, meanColumn, b, false, false, 1.0, 0.0);
        dx.assign(xhat).muliColumnVector(b).rsubi(g).subiColumnVector(a).muliColumnVector(rstd);
    }
}
