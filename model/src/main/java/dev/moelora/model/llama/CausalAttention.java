package dev.moelora.model.llama;

import dev.moelora.model.nn.Attention;
import dev.moelora.model.nn.MaskedSoftmax;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastAddOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Grouped-query scaled dot-product attention with an additive mask, forward and backward side by
 * side, on head-major tensors. H query heads share KV key/value heads in groups of G = H / KV:
 * query head h reads key/value head h / G (Hugging Face's {@code repeat_kv}). Because the G query
 * heads of one group are adjacent, (B, H, Tq, D) is viewed as (B, KV, G*Tq, D) and each group is
 * one batched matmul against its keys, with no copy of the keys per query head.
 *
 * <p>{@code att = softmax(q k^T / sqrt(D) + bias)}, {@code ctx = att v}. The bias is built by
 * {@link #bias}: causal (key j visible to query i when j <= i) and, for right-padded batches,
 * padded keys hidden. It never lets a query see a later or padded key, and never copies keys or
 * values per query head.
 */
public final class CausalAttention {
    private CausalAttention() {}

    /**
     * @param q    (B, H, Tq, D) queries (RoPE applied)
     * @param k, v (B, KV, Tk, D) keys (RoPE applied) and values; may be strided views of a cache
     * @param bias (B, Tq, Tk) additive mask, or null when every key is visible to every query
     * @param att  (B, H, Tq, Tk) out: attention probabilities, kept for backward
     * @param ctx  (B, H, Tq, D) out
     */
    public static void forward(INDArray q, INDArray k, INDArray v, INDArray bias, INDArray att, INDArray ctx) {
        long B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3), KV = k.size(1), Tk = k.size(2);
        Nd4j.matmul(q.reshape('c', B, KV, H / KV * Tq, D), k, att.reshape('c', B, KV, H / KV * Tq, Tk), false, true, false);
        MaskedSoftmax.forward(att, 1.0 / Math.sqrt(D), bias);
        Nd4j.matmul(att.reshape('c', B, KV, H / KV * Tq, Tk), v, ctx.reshape('c', B, KV, H / KV * Tq, D), false, false, false);
    }

    /**
     * Softmax backward ({@link MaskedSoftmax#backward}, in place in datt), then through the two matmuls. The
     * gradients of a shared key/value head sum over its query heads, which the grouped matmuls do.
     *
     * @param dctx         (B, H, T, D)
     * @param datt         (B, H, T, T) scratch
     * @param dq           (B, H, T, D) out, overwritten
     * @param dk, dv       (B, KV, T, D) out, overwritten
     */
    public static void backward(INDArray dctx, INDArray q, INDArray k, INDArray v, INDArray att,
                                INDArray datt, INDArray dq, INDArray dk, INDArray dv) {
        long B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), KV = k.size(1), GT = H / KV * T;
        INDArray dctxG = dctx.reshape('c', B, KV, GT, D), attG = att.reshape('c', B, KV, GT, T);
        Nd4j.matmul(attG, dctxG, dv, true, false, false);
        Nd4j.matmul(dctxG, v, datt.reshape('c', B, KV, GT, T), false, true, false);
        MaskedSoftmax.backward(att, datt, 1.0 / Math.sqrt(D), datt);
        INDArray dscoreG = datt.reshape('c', B, KV, GT, T);
        Nd4j.matmul(dscoreG, k, dq.reshape('c', B, KV, GT, D), false, false, false);
        Nd4j.matmul(dscoreG, q.reshape('c', B, KV, GT, D), dk, true, false, false);
    }

    /**
     * (n, n): 0 on and below the diagonal, {@link Attention#MASKED} above. Built once per size;
     * {@link #bias} copies its top-left corner.
     */
    public static INDArray causalTable(int n, DataType dtype) {
        INDArray table = Nd4j.zeros(dtype, n, n);
        for (int i = 0; i + 1 < n; i++) table.get(NDArrayIndex.point(i), NDArrayIndex.interval(i + 1, n)).assign(Attention.MASKED);
        return table;
    }

    /**
     * bias[b, i, j] = causal[i, j] + (mask[b * T + j] == 0 ? MASKED : 0).
     *
     * @param causal  (n, n) from {@link #causalTable}, n >= T
     * @param mask    (B*T) 1 for real tokens, 0 for padding; null when all are real
     * @param keyBias (B, T) scratch
     * @param bias    (B, T, T) out
     */
    public static void bias(INDArray causal, float[] mask, int B, int T, INDArray keyBias, INDArray bias) {
        bias.assign(0.0);
        Nd4j.exec(new BroadcastAddOp(bias, causal.get(NDArrayIndex.interval(0, T), NDArrayIndex.interval(0, T)), bias, 1, 2));
        if (mask == null) return;
        for (int i = 0; i < B * T; i++) keyBias.putScalar(i / T, i % T, mask[i] != 0f ? 0.0 : Attention.MASKED);
        Nd4j.exec(new BroadcastAddOp(bias, keyBias, bias, 0, 2));
    }
}
