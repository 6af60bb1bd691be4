package dev.moelora.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * LayerNorm over the channels of each row, forward and backward side by side:
 * {@code y = gamma * (x - mean) / sqrt(var + eps) + beta}. Gamma and beta are frozen base
 * weights, so backward returns only dL/dx. Each is one pass per row (in float lanes for FLOAT
 * tensors when the JVM has the Vector API, else in double) instead of a chain of ND4J calls each
 * a pass over the (N, C) tensor.
 */
public final class LayerNorm {
    private final int channels;
    private final double eps;

    public LayerNorm(int channels, double eps) {
        this.channels = channels;
        this.eps = eps;
    }

    /**
     * @param x     (N, C) input, left untouched
     * @param y     (N, C) output
     * @param xhat  (N, C) normalised input, kept for backward
     * @param rstd  (N, 1) 1/sqrt(var + eps), kept for backward
     */
    public void forward(INDArray x, INDArray gamma, INDArray beta, INDArray y, INDArray xhat, INDArray rstd) {
        HostRows xs = new HostRows(x), ys = new HostRows(y), hs = new HostRows(xhat), rs = new HostRows(rstd);
        double[] g = HostRows.vector(gamma, channels, "LayerNorm"), b = HostRows.vector(beta, channels, "LayerNorm");
        int C = channels;
        if (xs.floatLanes() && ys.floatLanes() && hs.floatLanes() && rs.floatLanes()) {
            float[] gf = FloatLanes.rounded(g), bf = FloatLanes.rounded(b);
            RowRanges.run((int) xs.rows(), C, (from, to) -> {
                float[] v = new float[C];
                for (int r = from; r < to; r++) {
                    xs.read(r, v);
                    float mean = FloatLanes.sum(v, C) / C;
                    FloatLanes.addScalar(v, -mean, C);
                    double inv = 1.0 / Math.sqrt(FloatLanes.dot(v, v, C) / (double) C + eps);
                    FloatLanes.scale(v, (float) inv, C);
                    hs.write(r, v);
                    FloatLanes.mulAdd(v, gf, bf, v, C);
                    ys.write(r, v);
                    rs.set(r, 0, inv);
                }
            });
            return;
        }
        RowRanges.run((int) xs.rows(), C, (from, to) -> {
            double[] v = new double[C], out = new double[C];
            for (int r = from; r < to; r++) {
                xs.read(r, v);
                double mean = 0, var = 0;
                for (int c = 0; c < C; c++) mean += v[c];
                mean /= C;
                for (int c = 0; c < C; c++) {
                    v[c] -= mean;
                    var += v[c] * v[c];
                }
                double inv = 1.0 / Math.sqrt(var / C + eps);
                for (int c = 0; c < C; c++) {
                    v[c] *= inv;
                    out[c] = v[c] * g[c] + b[c];
                }
                hs.write(r, v);
                ys.write(r, out);
                rs.set(r, 0, inv);
            }
        });
    }

    /**
     * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = dy * gamma.
     *
     * @param dx (N, C) out, overwritten; may alias dy
     */
    public void backward(INDArray dy, INDArray gamma, INDArray xhat, INDArray rstd, INDArray dx) {
        HostRows dys = new HostRows(dy), hs = new HostRows(xhat), rs = new HostRows(rstd), dxs = new HostRows(dx);
        double[] gam = HostRows.vector(gamma, channels, "LayerNorm");
        int C = channels;
        if (dys.floatLanes() && hs.floatLanes() && rs.floatLanes() && dxs.floatLanes()) {
            float[] gf = FloatLanes.rounded(gam);
            RowRanges.run((int) dys.rows(), C, (from, to) -> {
                float[] g = new float[C], h = new float[C];
                for (int r = from; r < to; r++) {
                    dys.read(r, g);
                    hs.read(r, h);
                    FloatLanes.mul(g, gf, g, C);
                    float mg = FloatLanes.sum(g, C) / C, mgh = FloatLanes.dot(g, h, C) / C;
                    FloatLanes.addScalar(g, -mg, C);
                    FloatLanes.scaledDifference(g, h, mgh, (float) rs.get(r, 0), g, C);
                    dxs.write(r, g);
                }
            });
            return;
        }
        RowRanges.run((int) dys.rows(), C, (from, to) -> {
            double[] g = new double[C], h = new double[C];
            for (int r = from; r < to; r++) {
                dys.read(r, g);
                hs.read(r, h);
                double sg = 0, sgh = 0;
                for (int c = 0; c < C; c++) {
                    g[c] *= gam[c];
                    sg += g[c];
                    sgh += g[c] * h[c];
                }
                double mg = sg / C, mgh = sgh / C, inv = rs.get(r, 0);
                for (int c = 0; c < C; c++) g[c] = inv * (g[c] - mg - h[c] * mgh);
                dxs.write(r, g);
            }
        });
    }
}
