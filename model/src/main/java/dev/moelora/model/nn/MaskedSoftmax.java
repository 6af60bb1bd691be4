package dev.moelora.model.nn;

import java.util.Arrays;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Attention's softmax over keys with a scale and an additive mask, forward and backward side by
 * side, each one pass over the scores (in float lanes for FLOAT scores when the JVM has the
 * Vector API, else in double): {@code att = softmax(scale * s + bias)} and
 * {@code ds = scale * att * (datt - sum_j(datt * att))}. It replaces a chain of ND4J calls
 * (scale, broadcast add, softmax; multiply, sum, broadcast multiply, subtract, scale), each a pass
 * over a (B, H, Tq, Tk) tensor. A key whose exponent is below double's underflow gets exactly the
 * 0 that exp gives it, without calling exp (half of a causal mask).
 */
public final class MaskedSoftmax {
    /** Below this, Math.exp returns 0.0 (its smallest subnormal result is at about -745.13). */
    private static final double UNDERFLOW = -746;

    private MaskedSoftmax() {}

    /**
     * att <- softmax over the last axis of {@code scale * att + bias}, in place.
     *
     * @param att  (B, H, Tq, Tk) the scores q k^T in, the probabilities out; contiguous
     * @param bias (B, Tq, Tk) per query and key, or (B, Tk) per key for every query, or null
     */
    public static void forward(INDArray att, double scale, INDArray bias) {
        long B = att.size(0), H = att.size(1), Tq = att.size(2);
        int Tk = (int) att.size(3);
        HostRows rows = new HostRows(att.reshape('c', B * H * Tq, Tk));
        HostRows biasRows = bias == null ? null : new HostRows(bias.rank() == 3 ? bias.reshape('c', B * Tq, Tk) : bias);
        boolean perQuery = bias != null && bias.rank() == 3;
        if (bias != null && (bias.size(0) != B || bias.size(bias.rank() - 1) != Tk || (perQuery && bias.size(1) != Tq))) {
            throw new IllegalArgumentException("attention bias " + Arrays.toString(bias.shape()) + " does not fit scores " + Arrays.toString(att.shape()));
        }
        if (rows.floatLanes() && (biasRows == null || biasRows.floatLanes())) {
            RowRanges.run((int) (B * H * Tq), Tk, (from, to) -> {
                float[] s = new float[Tk], m = bias == null ? null : new float[Tk];
                for (int r = from; r < to; r++) {
                    rows.read(r, s);
                    if (m != null) biasRows.read(biasRow(r, H, Tq, perQuery), m);
                    float max = FloatLanes.scaleAddMax(s, (float) scale, m, Tk);
                    FloatLanes.scale(s, 1f / FloatLanes.expShiftSum(s, max, Tk), Tk);
                    rows.write(r, s);
                }
            });
            return;
        }
        RowRanges.run((int) (B * H * Tq), Tk, (from, to) -> {
            double[] s = new double[Tk], m = bias == null ? null : new double[Tk];
            for (int r = from; r < to; r++) {
                rows.read(r, s);
                if (m != null) biasRows.read(biasRow(r, H, Tq, perQuery), m);
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < Tk; j++) {
                    double v = scale * s[j] + (m == null ? 0.0 : m[j]);
                    s[j] = v;
                    if (v > max) max = v;
                }
                double sum = 0;
                for (int j = 0; j < Tk; j++) {
                    double d = s[j] - max;
                    sum += s[j] = d < UNDERFLOW ? 0.0 : Math.exp(d);
                }
                double inv = 1.0 / sum;
                for (int j = 0; j < Tk; j++) s[j] *= inv;
                rows.write(r, s);
            }
        });
    }

    /** The bias row of score row r = ((b * H + h) * Tq + i): (b, i) per query, b per key only. */
    private static int biasRow(int r, long H, long Tq, boolean perQuery) {
        long b = r / (H * Tq);
        return (int) (perQuery ? b * Tq + r % Tq : b);
    }

    /**
     * ds = scale * att * (datt - sum_j(datt * att)), row by row.
     *
     * @param att    (B, H, Tq, Tk) the probabilities of {@link #forward}
     * @param datt   (B, H, Tq, Tk) dL/datt
     * @param dscore (B, H, Tq, Tk) out: dL/d(scores before scaling); may be {@code datt} itself
     */
    public static void backward(INDArray att, INDArray datt, double scale, INDArray dscore) {
        long n = att.size(0) * att.size(1) * att.size(2);
        int Tk = (int) att.size(3);
        HostRows a = new HostRows(att.reshape('c', n, Tk)), g = new HostRows(datt.reshape('c', n, Tk));
        HostRows out = dscore == datt ? g : new HostRows(dscore.reshape('c', n, Tk));
        if (a.floatLanes() && g.floatLanes() && out.floatLanes()) {
            RowRanges.run((int) n, Tk, (from, to) -> {
                float[] p = new float[Tk], d = new float[Tk];
                for (int r = from; r < to; r++) {
                    a.read(r, p);
                    g.read(r, d);
                    float dot = FloatLanes.dot(d, p, Tk);
                    FloatLanes.mul(p, d, d, Tk);
                    FloatLanes.scaledDifference(d, p, dot, (float) scale, d, Tk);  // scale * (p d - dot p)
                    out.write(r, d);
                }
            });
            return;
        }
        RowRanges.run((int) n, Tk, (from, to) -> {
            double[] p = new double[Tk], d = new double[Tk];
            for (int r = from; r < to; r++) {
                a.read(r, p);
                g.read(r, d);
                double dot = 0;
                for (int j = 0; j < Tk; j++) dot += d[j] * p[j];
                for (int j = 0; j < Tk; j++) d[j] = scale * p[j] * (d[j] - dot);
                out.write(r, d);
            }
        });
    }
}
