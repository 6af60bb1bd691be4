package dev.moelora.model.moelora;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One expert's low-rank map {@code H = s (X A^T) B^T} and its backward, as GEMMs into buffers the
 * caller owns. This is the only place the expert math is written: the in-process bank and the
 * expert actors of the expert-parallel runtime both call it, so that they agree bit for bit. It
 * holds no state and allocates nothing.
 *
 * <p>Dimensions: n rows routed to the expert, C = dIn, D = dOut, R = r_e.
 */
public final class LowRankExpert {
    private LowRankExpert() {}

    /**
     * @param x  (n, C) the expert's rows
     * @param a  (R, C) A_e
     * @param b  (D, R) B_e
     * @param h1 (n, R) out: X A^T, kept for backward
     * @param h  (n, D) out: s h1 B^T, the contribution and contrastive feature
     */
    public static void forward(INDArray x, INDArray a, INDArray b, double scale, INDArray h1, INDArray h) {
        Nd4j.gemm(x, a, h1, false, true, 1.0, 0.0);
        Nd4j.gemm(h1, b, h, false, true, scale, 0.0);
    }

    /**
     * Adds the rows' contribution to dA and dB and writes dX. {@code dx} may be {@code x}'s own
     * buffer: x is read (for dA) before dX is written.
     *
     * @param dh  (n, D) dL/dH
     * @param x   (n, C) the rows of the forward
     * @param h1  (n, R) the forward's X A^T
     * @param dA  (R, C) accumulated: dA += dh1^T X
     * @param dB  (D, R) accumulated: dB += s dH^T h1
     * @param dh1 (n, R) scratch: s dH B
     * @param dx  (n, C) out: dh1 A
     */
    public static void backward(INDArray dh, INDArray x, INDArray h1, INDArray a, INDArray b, double scale,
                                INDArray dA, INDArray dB, INDArray dh1, INDArray dx) {
        Nd4j.gemm(dh, h1, dB, true, false, scale, 1.0);
        Nd4j.gemm(dh, b, dh1, false, false, scale, 0.0);
        Nd4j.gemm(dh1, x, dA, true, false, 1.0, 1.0);
        Nd4j.gemm(dh1, a, dx, false, false, 1.0, 0.0);
    }
}
