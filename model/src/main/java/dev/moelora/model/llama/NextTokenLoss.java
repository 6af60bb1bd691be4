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
     * @param logits   (B*T, V) for {@code batch}
     * @param lossMask (B*T) 1 where token t is a target whose prediction (from row t - 1) counts;
     *                 the first token of a sequence and padding (mask 0 in the batch) never count
     * @param dLogits  (B*T, V) out: dLoss/dLogits, zero in rows that predict nothing counted;
     *                 may be {@code logits} itself, which is then overwritten
     * @param rowScale (B*T, 1) scratch
     * @return the mean loss over counted targets, 0 when none counts
     */
    public static double forwardBackward(INDArray logits, DecoderBatch batch, float[] lossMask, INDArray dLogits, INDArray rowScale) {
        int N = batch.rows(), T = batch.tokens();
        int[] ids = batch.ids();
        if (lossMask.length != N || logits.size(0) != N) {
            throw new IllegalArgumentException("a batch of " + batch.batch() + " x " + T + " needs " + N + " loss-mask entries and logits rows; got "
                    + lossMask.length + " and " + logits.size(0));
        }
        int counted = 0;
        for (int i = 0; i < N; i++) if (predictsCounted(i, batch, lossMask)) counted++;
        Nd4j.exec(new LogSoftMax(logits, dLogits));
        double loss = 0;
        for (int i = 0; i < N; i++) {
            if (predictsCounted(i, batch, lossMask)) loss -= dLogits.getDouble(i, ids[i + 1]);
        }
        Transforms.exp(dLogits, false);
        for (int i = 0; i < N; i++) {
            boolean counts = predictsCounted(i, batch, lossMask);
            if (counts) dLogits.putScalar(i, ids[i + 1], dLogits.getDouble(i, ids[i + 1]) - 1.0);
            rowScale.putScalar(i, 0, counts ? 1.0 / counted : 0.0);
        }
        dLogits.muliColumnVector(rowScale);
        return counted == 0 ? 0.0 : loss / counted;
    }

    /** The rows (ascending) whose prediction counts: the logit rows {@link #forwardBackwardRows} needs. */
    public static int[] countedRows(DecoderBatch batch, float[] lossMask) {
        int N = batch.rows();
        if (lossMask.length != N) {
            throw new IllegalArgumentException("a batch of " + batch.batch() + " x " + batch.tokens() + " needs " + N + " loss-mask entries; got " + lossMask.length);
        }
        int counted = 0;
        for (int i = 0; i < N; i++) if (predictsCounted(i, batch, lossMask)) counted++;
        int[] rows = new int[counted];
        for (int i = 0, j = 0; i < N; i++) if (predictsCounted(i, batch, lossMask)) rows[j++] = i;
        return rows;
    }

    /**
     * The same loss and gradient as {@link #forwardBackward}, from the logits (R, V) of the counted
     * rows only ({@link #countedRows}, as {@code LlamaDecoder.forward(batch, rows)} gives them).
     *
     * @param dLogits (R, V) out: dLoss/dLogits of those rows; may be {@code logits} itself
     * @return the mean loss over the R targets, 0 when R = 0
     */
    public static double forwardBackwardRows(INDArray logits, DecoderBatch batch, int[] rows, INDArray dLogits) {
        int R = rows.length;
        if (logits.size(0) != R) throw new IllegalArgumentException(R + " counted rows, but logits for " + logits.size(0));
        if (R == 0) return 0.0;
        int[] ids = batch.ids();
        Nd4j.exec(new LogSoftMax(logits, dLogits));
        double loss = 0;
        for (int j = 0; j < R; j++) loss -= dLogits.getDouble(j, ids[rows[j] + 1]);
        Transforms.exp(dLogits, false);
        for (int j = 0; j < R; j++) dLogits.putScalar(j, ids[rows[j] + 1], dLogits.getDouble(j, ids[rows[j] + 1]) - 1.0);
        dLogits.muli(1.0 / R);
        return loss / R;
    }

    /** Whether row i's prediction, of token i + 1 in the same sequence, counts. */
    private static boolean predictsCounted(int i, DecoderBatch batch, float[] lossMask) {
        return i % batch.tokens() != batch.tokens() - 1 && lossMask[i + 1] != 0f && batch.mask()[i + 1] != 0f;
    }
}
