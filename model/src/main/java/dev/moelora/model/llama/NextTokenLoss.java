package dev.moelora.model.llama;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.LogSoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Causal language-modelling loss and its gradient in one call: row b * T + t of the logits
 * predicts token t + 1 of sequence b, and only targets the loss mask selects count (response
 * tokens; prompt tokens and padding are masked out). The loss is the mean cross-entropy over
 * the counted targets, as Hugging Face computes it from labels with -100 on ignored positions.
 * A target outside the mask never contributes to the loss or to the gradient.
 */
public final class NextTokenLoss {
    private NextTokenLoss() {}

    /**
     * @param logits   (B*T, V)
     * @param ids      (B*T) the tokens, row-major
     * @param lossMask (B*T) 1 where token t is a target whose prediction (from row t - 1) counts;
     *                 the first token of a sequence never counts
     * @param dLogits  (B*T, V) out: dLoss/dLogits, zero in rows that predict nothing counted;
     *                 may be {@code logits} itself, which is then overwritten
     * @param rowScale (B*T, 1) scratch
     * @return the mean loss over counted targets, 0 when none counts
     */
    public static double forwardBackward(INDArray logits, int[] ids, float[] lossMask, int B, int T,
                                         INDArray dLogits, INDArray rowScale) {
        int N = B * T;
        if (ids.length != N || lossMask.length != N || logits.size(0) != N) {
            throw new IllegalArgumentException("a batch of " + B + " x " + T + " needs " + N + " ids, mask entries and logits rows; got "
                    + ids.length + ", " + lossMask.length + ", " + logits.size(0));
        }
        int counted = 0;
        for (int i = 0; i < N; i++) if (predictsCounted(i, T, lossMask)) counted++;
        Nd4j.exec(new LogSoftMax(logits, dLogits));
        double loss = 0;
        for (int i = 0; i < N; i++) {
            if (predictsCounted(i, T, lossMask)) loss -= dLogits.getDouble(i, ids[i + 1]);
        }
        Transforms.exp(dLogits, false);
        for (int i = 0; i < N; i++) {
            boolean counts = predictsCounted(i, T, lossMask);
            if (counts) dLogits.putScalar(i, ids[i + 1], dLogits.getDouble(i, ids[i + 1]) - 1.0);
            rowScale.putScalar(i, 0, counts ? 1.0 / counted : 0.0);
        }
        dLogits.muliColumnVector(rowScale);
        return counted == 0 ? 0.0 : loss / counted;
    }

    /** Whether row i's prediction, of token i + 1 in the same sequence, counts. */
    private static boolean predictsCounted(int i, int T, float[] lossMask) {
        return i % T != T - 1 && lossMask[i + 1] != 0f;
    }
}
