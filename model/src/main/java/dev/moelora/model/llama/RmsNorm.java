package dev.moelora.model.llama;

import dev.moelora.model.nn.FloatLanes;
import dev.moelora.model.nn.HostRows;
import dev.moelora.model.nn.RowRanges;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * RMSNorm over the channels of each row, forward and backward side by side, as Hugging Face's
 * LlamaRMSNorm: {@code y = w * x / sqrt(mean(x^2) + eps)} (no mean subtraction, no bias). The
 * weight is frozen: backward returns only dL/dx and never computes a weight gradient. Each is one
 * pass per row (in float lanes for FLOAT tensors when the JVM has the Vector API, else in double)
 * instead of a chain of ND4J calls each a pass over the (N, C) tensor.
 */
public final class RmsNorm {
    private final int channels;
    private final double eps;

    public RmsNorm(int channels, double eps) {
        this.channels = channels;
        this.eps = eps;
    }

    /**
     * @param x    (N, C) input, left untouched
     * @param w    (1, C) weight
     * @param y    (N, C) out
     * @param xhat (N, C) out: x * rstd, kept for backward
     * @param rstd (N, 1) out: 1 / sqrt(mean(x^2) + eps), kept for backward
     */
    public void forward(INDArray x, INDArray w, INDArray y, INDArray xhat, INDArray rstd) {
        HostRows xs = new HostRows(x), ys = new HostRows(y), hs = new HostRows(xhat), rs = new HostRows(rstd);
        double[] weight = HostRows.vector(w, channels, "RMSNorm");
        if (xs.floatLanes() && ys.floatLanes() && hs.floatLanes() && rs.floatLanes()) {
            float[] wf = FloatLanes.rounded(weight);
            RowRanges.run((int) xs.rows(), channels, (from, to) -> {
                float[] row = new float[channels];
                for (int r = from; r < to; r++) {
                    xs.read(r, row);
                    double inv = 1.0 / Math.sqrt(FloatLanes.dot(row, row, channels) / (double) channels + eps);
                    FloatLanes.scale(row, (float) inv, channels);
                    hs.write(r, row);
                    FloatLanes.mul(row, wf, row, channels);
                    ys.write(r, row);
                    rs.set(r, 0, inv);
                }
            });
            return;
        }
        RowRanges.run((int) xs.rows(), channels, (from, to) -> {
            double[] row = new double[channels], out = new double[channels];
            for (int r = from; r < to; r++) {
                xs.read(r, row);
                double ss = 0;
                for (int c = 0; c < channels; c++) ss += row[c] * row[c];
                double inv = 1.0 / Math.sqrt(ss / channels + eps);
                for (int c = 0; c < channels; c++) {
                    row[c] *= inv;
                    out[c] = row[c] * weight[c];
                }
                hs.write(r, row);
                ys.write(r, out);
                rs.set(r, 0, inv);
            }
        });
    }

    /**
     * dx = rstd * (g - xhat * mean(g * xhat)), with g = dy * w.
     *
     * @param dx (N, C) out, overwritten; may alias dy
     */
    public void backward(INDArray dy, INDArray w, INDArray xhat, INDArray rstd, INDArray dx) {
        HostRows dys = new HostRows(dy), hs = new HostRows(xhat), rs = new HostRows(rstd), dxs = new HostRows(dx);
        double[] weight = HostRows.vector(w, channels, "RMSNorm");
        if (dys.floatLanes() && hs.floatLanes() && rs.floatLanes() && dxs.floatLanes()) {
            float[] wf = FloatLanes.rounded(weight);
            RowRanges.run((int) dys.rows(), channels, (from, to) -> {
                float[] g = new float[channels], h = new float[channels];
                for (int r = from; r < to; r++) {
                    dys.read(r, g);
                    hs.read(r, h);
                    FloatLanes.mul(g, wf, g, channels);
                    float a = FloatLanes.dot(g, h, channels) / channels;
                    FloatLanes.scaledDifference(g, h, a, (float) rs.get(r, 0), g, channels);
                    dxs.write(r, g);
                }
            });
            return;
        }
        RowRanges.run((int) dys.rows(), channels, (from, to) -> {
            double[] g = new double[channels], h = new double[channels];
            for (int r = from; r < to; r++) {
                dys.read(r, g);
                hs.read(r, h);
                double dot = 0;
                for (int c = 0; c < channels; c++) {
                    g[c] *= weight[c];
                    dot += g[c] * h[c];
                }
                double a = dot / channels, inv = rs.get(r, 0);
                for (int c = 0; c < channels; c++) g[c] = inv * (g[c] - h[c] * a);
                dxs.write(r, g);
            }
        });
    }
}
