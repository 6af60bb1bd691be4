package dev.moelora.model.llama;

import dev.moelora.model.nn.HostRows;
import dev.moelora.model.nn.RowRanges;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Rotary position embedding in Hugging Face's {@code rotate_half} layout, forward and backward side
 * by side. For a head vector x of width D at position p, with inv_freq[i] = theta^(-2i/D) (rescaled
 * by {@link Llama3Scaling} when the config asks for it) and angle a_i = p * inv_freq[i] (i < D/2):
 * {@code y[i] = x[i] cos a_i - x[i + D/2] sin a_i}, {@code y[i + D/2] = x[i + D/2] cos a_i + x[i] sin a_i}.
 * Backward is the rotation by -a. Angles are computed in double (Hugging Face computes them in
 * float32, which differs by ~1e-7 relative at long positions).
 *
 * <p>The tables cover positions [0, P) and are built once; a call never allocates a tensor.
 */
public final class Rope {
    private final int headDim;
    private final INDArray cos; // (P, D): cos a_(i mod D/2)
    private final INDArray sin; // (P, D): -sin a_i in the first half, +sin a_i in the second (rotate_half's sign)

    /**
     * Llama 3.1's rescaled RoPE ({@code rope_scaling} of rope_type "llama3"), as transformers'
     * {@code _compute_llama3_parameters} (modeling_rope_utils.py) computes it: with wavelength
     * w = 2 pi / inv_freq, long waves (w > originalMax / lowFreqFactor) are slowed by factor, short
     * ones (w < originalMax / highFreqFactor) are kept, and those between are interpolated,
     * {@code (1 - s) inv_freq / factor + s inv_freq} with {@code s = (originalMax / w - low) / (high - low)}.
     * No attention scaling (transformers' attention_factor is 1 for this type).
     */
    public record Llama3Scaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {
        public Llama3Scaling {
            if (!(factor > 0)) throw new IllegalArgumentException("factor must be > 0, got " + factor);
            if (!(lowFreqFactor > 0)) throw new IllegalArgumentException("low_freq_factor must be > 0, got " + lowFreqFactor);
            if (!(highFreqFactor > lowFreqFactor)) {
                throw new IllegalArgumentException("high_freq_factor must be > low_freq_factor " + lowFreqFactor + ", got " + highFreqFactor);
            }
            if (originalMaxPositions < 1) throw new IllegalArgumentException("original_max_position_embeddings must be >= 1, got " + originalMaxPositions);
        }

        double rescale(double invFreq) {
            double wavelen = 2 * Math.PI / invFreq;
            double lowFreqWavelen = originalMaxPositions / lowFreqFactor, highFreqWavelen = originalMaxPositions / highFreqFactor;
            if (wavelen < highFreqWavelen) return invFreq;
            if (wavelen > lowFreqWavelen) return invFreq / factor;
            double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
            return (1 - smooth) * invFreq / factor + smooth * invFreq;
        }
    }

    /** inv_freq[i] = theta^(-2i/D) for i < D/2, rescaled when {@code scaling} is not null. */
    public static double[] inverseFrequencies(int headDim, double theta, Llama3Scaling scaling) {
        double[] inv = new double[headDim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0 / Math.pow(theta, 2.0 * i / headDim);
            if (scaling != null) inv[i] = scaling.rescale(inv[i]);
        }
        return inv;
    }

    /** Plain RoPE. */
    public Rope(int headDim, double theta, int positions, DataType dtype) {
        this(headDim, theta, null, positions, dtype);
    }

    /** @param scaling Llama 3.1's rescaling of the frequencies, or null for plain RoPE */
    public Rope(int headDim, double theta, Llama3Scaling scaling, int positions, DataType dtype) {
        int D = headDim, half = D / 2;
        this.headDim = D;
        double[] invFreq = inverseFrequencies(D, theta, scaling);
        double[] c = new double[positions * D], s = new double[positions * D];
        for (int p = 0; p < positions; p++) {
            for (int i = 0; i < half; i++) {
                double a = p * invFreq[i];
                c[p * D + i] = c[p * D + half + i] = Math.cos(a);
                s[p * D + i] = -Math.sin(a);
                s[p * D + half + i] = Math.sin(a);
            }
        }
        this.cos = Nd4j.create(c, new long[] {positions, D}, DataType.DOUBLE).castTo(dtype);
        this.sin = Nd4j.create(s, new long[] {positions, D}, DataType.DOUBLE).castTo(dtype);
    }

    /** How many positions the tables cover. */
    public long positions() {
        return cos.size(0);
    }

    /**
     * Rotates x in place: row b * T + t holds the heads of sequence b at position offset + t.
     *
     * @param x (B*T, heads*D)
     */
    public void forward(INDArray x, int B, int T, int offset) {
        rotateAtPositions(x, B, T, offset, 1);
    }

    /** dx <- dx rotated by the negative angles: the transpose of forward. */
    public void backward(INDArray dx, int B, int T, int offset) {
        rotateAtPositions(dx, B, T, offset, -1);
    }

    /**
     * The table rows of {@code positions}, for {@link #forwardAt}: gathered once per step, used by
     * every block.
     *
     * @param cosRows, sinRows (N, D) out, N = positions.length
     */
    public void gather(int[] positions, INDArray cosRows, INDArray sinRows) {
        for (int p : positions) {
            if (p < 0 || p >= positions()) throw new IllegalArgumentException("position " + p + " is outside the RoPE tables of " + positions());
        }
        Nd4j.pullRows(cos, cosRows, 1, positions);
        Nd4j.pullRows(sin, sinRows, 1, positions);
    }

    /**
     * Rotates x in place when every row has a position of its own: row i holds one token's heads at
     * the position whose table rows {@link #gather} put in row i of cosRows and sinRows (batched
     * generation, where each sequence is at its own length). The same table values and the same
     * arithmetic as {@link #forward}, so a token gets bit-identical values whichever way it is
     * rotated.
     *
     * @param x                (N, heads*D)
     * @param cosRows, sinRows (N, D) from {@link #gather}
     */
    public void forwardAt(INDArray x, INDArray cosRows, INDArray sinRows) {
        HostRows xs = new HostRows(x), cs = new HostRows(cosRows), ss = new HostRows(sinRows);
        double[] row = new double[xs.width()], c = new double[headDim], sn = new double[headDim];
        for (int r = 0; r < xs.rows(); r++) {
            cs.read(r, c);
            ss.read(r, sn);
            xs.read(r, row);
            rotate(row, c, sn, 1);
            xs.write(r, row);
        }
    }

    private void rotateAtPositions(INDArray x, int B, int T, int offset, int sign) {
        if (offset + T > positions()) {
            throw new IllegalArgumentException("positions up to " + (offset + T) + " exceed the RoPE tables of " + positions());
        }
        HostRows xs = new HostRows(x), cs = new HostRows(cos), ss = new HostRows(sin);
        RowRanges.run(T, B * xs.width(), (from, to) -> {
            double[] row = new double[xs.width()], c = new double[headDim], sn = new double[headDim];
            for (int t = from; t < to; t++) {   // position-major, so each table row is read once
                cs.read(offset + t, c);
                ss.read(offset + t, sn);
                for (int b = 0; b < B; b++) {
                    xs.read(b * T + t, row);
                    rotate(row, c, sn, sign);
                    xs.write(b * T + t, row);
                }
            }
        });
    }

    /**
     * Every head of one row: x <- x * cos + sign * swap_halves(x) * sin, in place, with the table
     * rows cos and sin (rotate_half's sign folded into sin).
     */
    private void rotate(double[] x, double[] c, double[] sn, int sign) {
        int half = headDim / 2;
        for (int h = 0; h < x.length; h += headDim) {
            for (int i = 0; i < half; i++) {
                double lo = x[h + i], hi = x[h + half + i];
                x[h + i] = lo * c[i] + sign * (hi * sn[i]);
                x[h + half + i] = hi * c[half + i] + sign * (lo * sn[half + i]);
            }
        }
    }
}
