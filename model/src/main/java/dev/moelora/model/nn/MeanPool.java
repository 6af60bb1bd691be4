package dev.moelora.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Mean pooling over the real (unpadded) tokens of each sequence, as sentence-transformers does:
 * {@code pooled_b = sum_t m_bt h_bt / sum_t m_bt}. Written as one GEMM with a (B, N) weight
 * matrix P so forward and backward are {@code P H} and {@code P^T dPooled}.
 */
public final class MeanPool {
    private MeanPool() {}

    /** Fills weights (B, B*T) from the (B, T) 0/1 mask; every sequence must have a real token. */
    public static void weights(float[] mask, int B, int T, INDArray weights) {
        weights.assign(0.0);
        for (int b = 0; b < B; b++) {
            int count = 0;
            for (int t = 0; t < T; t++) if (mask[b * T + t] != 0f) count++;
            if (count == 0) throw new IllegalArgumentException("sequence " + b + " of the batch has no tokens");
            for (int t = 0; t < T; t++) {
                if (mask[b * T + t] != 0f) weights.putScalar(b, (long) b * T + t, 1.0 / count);
            }
        }
    }

    /** pooled (B, C) = weights (B, N) x hidden (N, C). */
    public static void forward(INDArray weights, INDArray hidden, INDArray pooled) {
        Nd4j.gemm(weights, hidden, pooled, false, false, 1.0, 0.0);
    }

    /** dHidden (N, C) = weights^T x dPooled. */
    public static void backward(INDArray weights, INDArray dPooled, INDArray dHidden) {
        Nd4j.gemm(weights, dPooled, dHidden, true, false, 1.0, 0.0);
    }
}
