package dev.moelora.model.llama;

import dev.moelora.model.nn.FloatLanes;
import dev.moelora.model.nn.HostRows;
import dev.moelora.model.nn.RowRanges;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * LLaMA's gated feed-forward activation, forward and backward side by side:
 * {@code y = silu(gate) * up}, silu(g) = g * sigmoid(g). The MLP is {@code down(y)} with
 * {@code gate} and {@code up} the outputs of two projections of the same input. Stateless; it
 * writes only into the buffers it is given, one pass per row (the sigmoid recomputed in backward
 * rather than kept): in float lanes for FLOAT tensors when the JVM has the Vector API, else in double.
 */
public final class SwiGlu {
    private SwiGlu() {}

    /**
     * @param gate, up (N, F)
     * @param y        (N, F) out
     */
    public static void forward(INDArray gate, INDArray up, INDArray y) {
        HostRows gs = new HostRows(gate), us = new HostRows(up), ys = new HostRows(y);
        int N = (int) gs.rows(), F = gs.width();
        if (gs.floatLanes() && us.floatLanes() && ys.floatLanes()) {
            RowRanges.run(N, F, (from, to) -> {
                float[] g = new float[F], u = new float[F];
                for (int r = from; r < to; r++) {
                    gs.read(r, g);
                    us.read(r, u);
                    FloatLanes.siluTimes(g, u, u, F);
                    ys.write(r, u);
                }
            });
            return;
        }
        RowRanges.run(N, F, (from, to) -> {
            double[] g = new double[F], u = new double[F];
            for (int r = from; r < to; r++) {
                gs.read(r, g);
                us.read(r, u);
                for (int i = 0; i < F; i++) u[i] *= g[i] / (1.0 + Math.exp(-g[i]));
                ys.write(r, u);
            }
        });
    }

    /**
     * dup = dy * silu(g); dgate = dy * up * sig * (1 + g * (1 - sig)).
     *
     * @param dgate, dup (N, F) out, overwritten; dy may be either
     */
    public static void backward(INDArray dy, INDArray gate, INDArray up, INDArray dgate, INDArray dup) {
        HostRows dys = new HostRows(dy), gs = new HostRows(gate), us = new HostRows(up), dgs = new HostRows(dgate), dus = new HostRows(dup);
        int N = (int) gs.rows(), F = gs.width();
        if (dys.floatLanes() && gs.floatLanes() && us.floatLanes() && dgs.floatLanes() && dus.floatLanes()) {
            RowRanges.run(N, F, (from, to) -> {
                float[] d = new float[F], g = new float[F], u = new float[F];
                for (int r = from; r < to; r++) {
                    dys.read(r, d);
                    gs.read(r, g);
                    us.read(r, u);
                    FloatLanes.swiGluBackward(d, g, u, g, u, F);
                    dus.write(r, u);
                    dgs.write(r, g);
                }
            });
            return;
        }
        RowRanges.run(N, F, (from, to) -> {
            double[] d = new double[F], g = new double[F], u = new double[F];
            for (int r = from; r < to; r++) {
                dys.read(r, d);
                gs.read(r, g);
                us.read(r, u);
                for (int i = 0; i < F; i++) {
                    double s = 1.0 / (1.0 + Math.exp(-g[i]));
                    double dg = d[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
                    u[i] = d[i] * g[i] * s;  // dup
                    g[i] = dg;               // dgate
                }
                dus.write(r, u);
                dgs.write(r, g);
            }
        });
    }
}
