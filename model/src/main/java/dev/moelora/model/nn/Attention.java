package dev.moelora.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Multi-head scaled dot-product attention with a key padding mask, forward and backward side by
 * side. Rows are tokens of B sequences of T tokens (N = B * T); channels C = H heads of D.
 * {@code att = softmax(q k^T / sqrt(D) + keyBias)}, {@code ctx = att v}.
 */
public final class Attention {
    /** Added to the scores of padded keys; exp() of it is 0 in float and double. */
    public static final double MASKED = -1e9;

    private Attention() {}

    private static INDArray heads(INDArray x, int B, int T, int H) {
        return x.reshape('c', B, T, H, x.size(1) / H).permute(0, 2, 1, 3); // (B, H, T, D)
    }

    /**
     * @param q,k,v   (N, C)
     * @param keyBias (B, T): 0 for real tokens, {@link #MASKED} for padding
     * @param att     (B, H, T, T) out: attention probabilities, kept for backward
     * @param scratch (B, H, T, D)
     * @param ctx     (N, C) out
     */
    public static void forward(INDArray q, INDArray k, INDArray v, INDArray keyBias, int B, int T, int H,
                               INDArray att, INDArray scratch, INDArray ctx) {
        double scale = 1.0 / Math.sqrt((double) q.size(1) / H);
        Nd4j.matmul(heads(q, B, T, H), heads(k, B, T, H), att, false, true, false);
        MaskedSoftmax.forward(att, scale, keyBias);
        Nd4j.matmul(att, heads(v, B, T, H), scratch, false, false, false);
        heads(ctx, B, T, H).assign(scratch);
    }

    /**
     * @param dctx            (N, C) dL/dctx
     * @param datt            (B, H, T, T) scratch
     * @param scratch         (B, H, T, D)
     * @param dq,dk,dv        (N, C) out, overwritten
     */
    public static void backward(INDArray dctx, INDArray q, INDArray k, INDArray v, INDArray att,
                                int B, int T, int H, INDArray datt,
                                INDArray scratch, INDArray dq, INDArray dk, INDArray dv) {
        double scale = 1.0 / Math.sqrt((double) q.size(1) / H);
        INDArray dctxh = heads(dctx, B, T, H);
        Nd4j.matmul(att, dctxh, scratch, true, false, false);
        heads(dv, B, T, H).assign(scratch);
        Nd4j.matmul(dctxh, heads(v, B, T, H), datt, false, true, false);
        MaskedSoftmax.backward(att, datt, scale, datt);
        Nd4j.matmul(datt, heads(k, B, T, H), scratch, false, false, false);
        heads(dq, B, T, H).assign(scratch);
        Nd4j.matmul(datt, heads(q, B, T, H), scratch, true, false, false);
        heads(dk, B, T, H).assign(scratch);
    }
}
