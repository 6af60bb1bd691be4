package dev.moelora.model.llama;

import static dev.moelora.model.nn.FiniteDifference.check;
import static dev.moelora.model.nn.FiniteDifference.dot;
import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The decoder's ops against their definitions and finite differences, on tiny shapes in double. */
class LlamaOpGradientTest {
    final SplittableRandom random = new SplittableRandom(17);

    static INDArray zeros(long... shape) {
        return Nd4j.zeros(DataType.DOUBLE, shape);
    }

    @Test
    void rmsNormMatchesDefinitionAndItsBackward() {
        int N = 3, C = 6;
        double eps = 1e-5;
        RmsNorm norm = new RmsNorm(C, eps);
        INDArray x = random(random, N, C), w = random(random, 1, C), r = random(random, N, C);
        INDArray y = zeros(N, C), xhat = zeros(N, C), rstd = zeros(N, 1);
        Runnable fwd = () -> norm.forward(x, w, y, xhat, rstd);
        fwd.run();
        for (int n = 0; n < N; n++) {
            double ms = 0;
            for (int c = 0; c < C; c++) ms += x.getDouble(n, c) * x.getDouble(n, c) / C;
            for (int c = 0; c < C; c++) assertEquals(w.getDouble(0, c) * x.getDouble(n, c) / Math.sqrt(ms + eps), y.getDouble(n, c), 1e-12);
        }
        INDArray dx = zeros(N, C);
        norm.backward(r, w, xhat, rstd, dx);
        check("RMSNorm dx", x, dx, () -> { fwd.run(); return dot(y, r); });
    }

    @Test
    void ropeRotatesHalvesAsHuggingFaceAndBackwardIsItsTranspose() {
        int B = 2, T = 3, heads = 2, D = 4, offset = 5;
        double theta = 100;
        Rope rope = new Rope(D, theta, offset + T, DataType.DOUBLE);
        INDArray x = random(random, B * T, heads * D), r = random(random, B * T, heads * D);
        INDArray y = x.dup();
        rope.forward(y, B, T, offset);
        for (int row = 0; row < B * T; row++) {
            int p = offset + row % T;
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < D / 2; i++) {
                    double a = p * Math.pow(theta, -2.0 * i / D), x1 = x.getDouble(row, h * D + i), x2 = x.getDouble(row, h * D + i + D / 2);
                    assertEquals(x1 * Math.cos(a) - x2 * Math.sin(a), y.getDouble(row, h * D + i), 1e-12);
                    assertEquals(x2 * Math.cos(a) + x1 * Math.sin(a), y.getDouble(row, h * D + i + D / 2), 1e-12);
                }
            }
        }
        INDArray dx = r.dup();
        rope.backward(dx, B, T, offset);
        check("RoPE dx", x, dx, () -> { y.assign(x); rope.forward(y, B, T, offset); return dot(y, r); });
    }

    /** B = 2, T = 4, H = 4 query heads over KV = 2 key/value heads, D = 2; the second sequence has 3 real tokens. */
    @Test
    void groupedCausalAttentionWithPaddingMatchesRepeatKvAndFiniteDifferences() {
        int B = 2, T = 4, H = 4, KV = 2, D = 2;
        float[] mask = {1, 1, 1, 1, 1, 1, 1, 0};
        INDArray q = random(random, B, H, T, D), k = random(random, B, KV, T, D), v = random(random, B, KV, T, D), r = random(random, B, H, T, D);
        INDArray bias = zeros(B, T, T), att = zeros(B, H, T, T), ctx = zeros(B, H, T, D);
        CausalAttention.bias(CausalAttention.causalTable(6, DataType.DOUBLE), mask, B, T, zeros(B, T), bias);
        Runnable fwd = () -> CausalAttention.forward(q, k, v, bias, att, ctx);
        fwd.run();
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                int kv = h / (H / KV); // repeat_kv: query head h reads key/value head h / G
                for (int i = 0; i < T; i++) {
                    double[] s = new double[T];
                    double max = Double.NEGATIVE_INFINITY, z = 0;
                    for (int j = 0; j < T; j++) {
                        boolean visible = j <= i && mask[b * T + j] != 0f;
                        s[j] = Double.NEGATIVE_INFINITY;
                        if (visible) {
                            s[j] = 0;
                            for (int d = 0; d < D; d++) s[j] += q.getDouble(b, h, i, d) * k.getDouble(b, kv, j, d) / Math.sqrt(D);
                        }
                        max = Math.max(max, s[j]);
                    }
                    for (int j = 0; j < T; j++) z += Math.exp(s[j] - max);
                    for (int j = 0; j < T; j++) assertEquals(Math.exp(s[j] - max) / z, att.getDouble(b, h, i, j), 1e-12, "att " + b + h + i + j);
                    for (int d = 0; d < D; d++) {
                        double expected = 0;
                        for (int j = 0; j < T; j++) expected += Math.exp(s[j] - max) / z * v.getDouble(b, kv, j, d);
                        assertEquals(expected, ctx.getDouble(b, h, i, d), 1e-12);
                    }
                }
            }
        }
        INDArray dq = zeros(B, H, T, D), dk = zeros(B, KV, T, D), dv = zeros(B, KV, T, D);
        CausalAttention.backward(r, q, k, v, att, zeros(B, H, T, T), dq, dk, dv);
        check("attention dq", q, dq, () -> { fwd.run(); return dot(ctx, r); });
        check("attention dk", k, dk, () -> { fwd.run(); return dot(ctx, r); });
        check("attention dv", v, dv, () -> { fwd.run(); return dot(ctx, r); });
    }

    @Test
    void swiGluMatchesSiluTimesUpAndItsBackward() {
        int N = 3, F = 5;
        INDArray gate = random(random, N, F).muli(3), up = random(random, N, F), r = random(random, N, F);
        INDArray y = zeros(N, F);
        Runnable fwd = () -> SwiGlu.forward(gate, up, y);
        fwd.run();
        double g = gate.getDouble(1, 2);
        assertEquals(g / (1 + Math.exp(-g)) * up.getDouble(1, 2), y.getDouble(1, 2), 1e-12);
        INDArray dgate = zeros(N, F), dup = zeros(N, F);
        SwiGlu.backward(r, gate, up, dgate, dup);
        check("SwiGLU dgate", gate, dgate, () -> { fwd.run(); return dot(y, r); });
        check("SwiGLU dup", up, dup, () -> { fwd.run(); return dot(y, r); });
    }

    @Test
    void nextTokenLossCountsOnlyMaskedTargetsAndItsGradientMatchesFiniteDifferences() {
        int B = 2, T = 3, V = 5;
        DecoderBatch batch = new DecoderBatch(B, T, new int[] {1, 4, 2, 3, 0, 0}, new float[] {1, 1, 1, 1, 1, 0});
        float[] lossMask = {0, 1, 1, 0, 1, 1}; // sequence 0: targets at t = 1, 2; sequence 1: t = 1 only (t = 2 is padding)
        INDArray logits = random(random, B * T, V).muli(2), dLogits = zeros(B * T, V);
        double loss = NextTokenLoss.forwardBackward(logits, batch, lossMask, dLogits);
        double expected = 0;
        int[][] counted = {{0, 4}, {1, 2}, {3, 0}}; // (row, target)
        for (int[] c : counted) {
            double z = 0;
            for (int j = 0; j < V; j++) z += Math.exp(logits.getDouble(c[0], j));
            expected += (Math.log(z) - logits.getDouble(c[0], c[1])) / counted.length;
        }
        assertEquals(expected, loss, 1e-12);
        assertEquals(0.0, dLogits.getRow(2).amaxNumber().doubleValue(), 0.0, "the last token of a sequence predicts nothing");
        assertEquals(0.0, dLogits.getRow(4).amaxNumber().doubleValue(), 0.0, "a padded target does not count, whatever the loss mask says");
        INDArray scratch = zeros(B * T, V);
        check("next-token loss dlogits", logits, dLogits,
                () -> NextTokenLoss.forwardBackward(logits, batch, lossMask, scratch));
        INDArray inPlace = logits.dup();
        assertEquals(loss, NextTokenLoss.forwardBackward(inPlace, batch, lossMask, inPlace), 1e-15);
        assertEquals(0.0, inPlace.sub(dLogits).amaxNumber().doubleValue(), 1e-15, "dLogits may overwrite the logits");
    }
}
