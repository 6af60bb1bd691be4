package dev.moelora.model.llama;

import dev.moelora.model.nn.FloatLanes;
import dev.moelora.model.nn.HostRows;
import dev.moelora.model.nn.RowRanges;
import dev.moelora.model.nn.SoftmaxCrossEntropy;
import org.nd4j.linalg.api.ndarray.INDArray;

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
     * @return the mean loss over counted targets, 0 when none counts
     */
    public static double forwardBackward(INDArray logits, DecoderBatch batch, float[] lossMask, INDArray dLogits) {
        int N = batch.rows();
        int[] ids = batch.ids();
        if (lossMask.length != N || logits.size(0) != N) {
            throw new IllegalArgumentException("a batch of " + batch.batch() + " x " + batch.tokens() + " needs " + N + " loss-mask entries and logits rows; got "
                    + lossMask.length + " and " + logits.size(0));
        }
        int counted = 0;
        for (int i = 0; i < N; i++) if (predictsCounted(i, batch, lossMask)) counted++;
        HostRows in = new HostRows(logits), out = dLogits == logits ? in : new HostRows(dLogits);
        double[] losses = new double[N];
        double scale = 1.0 / counted;
        RowRanges.run(N, in.width(), (from, to) -> {
            Row row = new Row(in, out);
            for (int i = from; i < to; i++) {
                if (predictsCounted(i, batch, lossMask)) losses[i] = row.loss(i, ids[i + 1], scale);
                else row.zero(i);
            }
        });
        return counted == 0 ? 0.0 : sumInOrder(losses) / counted;
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
        HostRows in = new HostRows(logits), out = dLogits == logits ? in : new HostRows(dLogits);
        double[] losses = new double[R];
        RowRanges.run(R, in.width(), (from, to) -> {
            Row row = new Row(in, out);
            for (int j = from; j < to; j++) losses[j] = row.loss(j, ids[rows[j] + 1], 1.0 / R);
        });
        return sumInOrder(losses) / R;
    }

    /** The rows' losses summed in row order, whichever threads computed them. */
    private static double sumInOrder(double[] losses) {
        double sum = 0;
        for (double l : losses) sum += l;
        return sum;
    }

    /**
     * One row's loss -log softmax(logits)[target], its gradient scale * (softmax - onehot) written
     * to the same row of out: one read of the row, one exp per logit, one write; in float lanes
     * for FLOAT logits when the JVM has the Vector API, else in double. One per thread.
     */
    private static final class Row {
        private final HostRows in, out;
        private final float[] lanes;
        private final double[] values;

        Row(HostRows in, HostRows out) {
            this.in = in;
            this.out = out;
            this.lanes = in.floatLanes() && out.floatLanes() ? new float[in.width()] : null;
            this.values = lanes == null ? new double[in.width()] : null;
        }

        double loss(int r, int target, double scale) {
            if (lanes == null) {
                in.read(r, values);
                double loss = SoftmaxCrossEntropy.forwardBackward(values, 0, values.length, target, values, scale);
                out.write(r, values);
                return loss;
            }
            int V = lanes.length;
            in.read(r, lanes);
            float max = FloatLanes.max(lanes, V), picked = lanes[target];
            double sum = FloatLanes.expShiftSum(lanes, max, V);
            FloatLanes.scale(lanes, (float) (scale / sum), V);
            lanes[target] -= (float) scale;
            out.write(r, lanes);
            return Math.log(sum) + max - picked;
        }

        void zero(int r) {
            if (lanes == null) {
                java.util.Arrays.fill(values, 0.0);
                out.write(r, values);
            } else {
                java.util.Arrays.fill(lanes, 0f);
                out.write(r, lanes);
            }
        }
    }

    /** Whether row i's prediction, of token i + 1 in the same sequence, counts. */
    private static boolean predictsCounted(int i, DecoderBatch batch, float[] lossMask) {
        return i % batch.tokens() != batch.tokens() - 1 && lossMask[i + 1] != 0f && batch.mask()[i + 1] != 0f;
    }
}
