package dev.moelora.model.llama;

import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.nn.Gelu;
import dev.moelora.model.nn.LayerNorm;
import dev.moelora.model.nn.MaskedSoftmax;
import dev.moelora.model.nn.VectorApi;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The fused kernels' float-lane path (FLOAT tensors, Vector API) against their double path (the
 * one the finite-difference checks cover) on the same values: equal to float rounding. Widths are
 * not multiples of any lane count, so the scalar tails run too, and the row counts are large
 * enough that the rows are split across cores.
 */
class FloatLanesKernelsTest {
    private static final double TOLERANCE = 2e-5; // relative to the tensor's largest magnitude
    private final SplittableRandom random = new SplittableRandom(23);

    @BeforeAll
    static void lanesAreOn() {
        assertTrue(VectorApi.PRESENT, "model's tests run with --add-modules jdk.incubator.vector -Dmoelora.vector-kernels=true, so FLOAT tensors take the lanes");
    }

    /** The same values as a FLOAT tensor, for the lanes. */
    private static INDArray asFloat(INDArray d) {
        return d.castTo(DataType.FLOAT);
    }

    private static void assertClose(String what, INDArray expected, INDArray actual) {
        double scale = Math.max(1e-30, expected.amaxNumber().doubleValue());
        double err = expected.sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue() / scale;
        assertTrue(err < TOLERANCE, what + ": float lanes differ from the double path by " + err + " of the largest value");
    }

    @Test
    void nextTokenLossInFloatLanesMatchesDouble() {
        int B = 4, T = 300, V = 37, N = B * T;
        int[] ids = new int[N];
        for (int i = 0; i < N; i++) ids[i] = random.nextInt(V);
        float[] mask = new float[N], lossMask = new float[N];
        Arrays.fill(mask, 1f);
        for (int i = 0; i < N; i++) lossMask[i] = random.nextInt(3) == 0 ? 0f : 1f;
        DecoderBatch batch = new DecoderBatch(B, T, ids, mask);
        INDArray logits = random(random, N, V).muli(4), dDouble = Nd4j.zeros(DataType.DOUBLE, N, V), dFloat = Nd4j.zeros(DataType.FLOAT, N, V);
        double lossDouble = NextTokenLoss.forwardBackward(logits, batch, lossMask, dDouble);
        double lossFloat = NextTokenLoss.forwardBackward(asFloat(logits), batch, lossMask, dFloat);
        assertEquals(lossDouble, lossFloat, 1e-5 * lossDouble, "loss");
        assertClose("dlogits", dDouble, dFloat);
        int[] rows = NextTokenLoss.countedRows(batch, lossMask);
        INDArray picked = Nd4j.pullRows(logits, 1, rows);
        INDArray rowsDouble = picked.dup(), rowsFloat = asFloat(picked);
        assertEquals(NextTokenLoss.forwardBackwardRows(rowsDouble, batch, rows, rowsDouble),
                NextTokenLoss.forwardBackwardRows(rowsFloat, batch, rows, rowsFloat), 1e-5 * lossDouble, "loss of the counted rows");
        assertClose("dlogits of the counted rows", rowsDouble, rowsFloat);
    }

    @Test
    void maskedSoftmaxInFloatLanesMatchesDouble() {
        int B = 3, H = 5, T = 13;
        INDArray scores = random(random, B, H, T, T).muli(3), datt = random(random, B, H, T, T);
        INDArray causal = Nd4j.create(DataType.DOUBLE, B, T, T), keys = Nd4j.create(DataType.DOUBLE, B, T);
        float[] mask = new float[B * T];
        for (int i = 0; i < mask.length; i++) mask[i] = i % T < T - (i / T) * 2 ? 1f : 0f; // sequence b has 2b padded keys
        CausalAttention.bias(CausalAttention.causalTable(T, DataType.DOUBLE), mask, B, T, keys, causal);
        for (INDArray bias : new INDArray[] {causal, keys, null}) {
            String what = bias == null ? "no bias" : Arrays.toString(bias.shape()) + " bias";
            Function<DataType, INDArray[]> run = dt -> {
                INDArray att = scores.castTo(dt).dup(), d = datt.castTo(dt); // castTo to its own type is no copy
                MaskedSoftmax.forward(att, 0.3, bias == null ? null : bias.castTo(dt));
                INDArray ds = Nd4j.zeros(dt, att.shape());
                MaskedSoftmax.backward(att, d, 0.3, ds);
                return new INDArray[] {att, ds};
            };
            INDArray[] d = run.apply(DataType.DOUBLE), f = run.apply(DataType.FLOAT);
            assertClose("softmax with " + what, d[0], f[0]);
            assertClose("softmax backward with " + what, d[1], f[1]);
        }
    }

    @Test
    void swiGluInFloatLanesMatchesDouble() {
        int N = 1500, F = 27;
        INDArray gate = random(random, N, F).muli(4), up = random(random, N, F), dy = random(random, N, F);
        Function<DataType, INDArray[]> run = dt -> {
            INDArray y = Nd4j.zeros(dt, N, F), dgate = Nd4j.zeros(dt, N, F), dup = Nd4j.zeros(dt, N, F);
            SwiGlu.forward(gate.castTo(dt), up.castTo(dt), y);
            SwiGlu.backward(dy.castTo(dt), gate.castTo(dt), up.castTo(dt), dgate, dup);
            return new INDArray[] {y, dgate, dup};
        };
        INDArray[] d = run.apply(DataType.DOUBLE), f = run.apply(DataType.FLOAT);
        assertClose("SwiGLU", d[0], f[0]);
        assertClose("SwiGLU dgate", d[1], f[1]);
        assertClose("SwiGLU dup", d[2], f[2]);
    }

    @Test
    void rmsNormInFloatLanesMatchesDouble() {
        int N = 3000, C = 21;
        RmsNorm norm = new RmsNorm(C, 1e-5);
        INDArray x = random(random, N, C), w = random(random, 1, C), dy = random(random, N, C);
        Function<DataType, INDArray[]> run = dt -> {
            INDArray y = Nd4j.zeros(dt, N, C), xhat = Nd4j.zeros(dt, N, C), rstd = Nd4j.zeros(dt, N, 1), dx = Nd4j.zeros(dt, N, C);
            norm.forward(x.castTo(dt), w.castTo(dt), y, xhat, rstd);
            norm.backward(dy.castTo(dt), w.castTo(dt), xhat, rstd, dx);
            return new INDArray[] {y, rstd, dx};
        };
        INDArray[] d = run.apply(DataType.DOUBLE), f = run.apply(DataType.FLOAT);
        assertClose("RMSNorm", d[0], f[0]);
        assertClose("RMSNorm rstd", d[1], f[1]);
        assertClose("RMSNorm dx", d[2], f[2]);
    }

    @Test
    void layerNormInFloatLanesMatchesDouble() {
        int N = 2500, C = 19;
        LayerNorm norm = new LayerNorm(C, 1e-12);
        INDArray x = random(random, N, C).addi(0.7), gamma = random(random, 1, C), beta = random(random, 1, C), dy = random(random, N, C);
        Function<DataType, INDArray[]> run = dt -> {
            INDArray y = Nd4j.zeros(dt, N, C), xhat = Nd4j.zeros(dt, N, C), rstd = Nd4j.zeros(dt, N, 1), dx = Nd4j.zeros(dt, N, C);
            norm.forward(x.castTo(dt), gamma.castTo(dt), beta.castTo(dt), y, xhat, rstd);
            norm.backward(dy.castTo(dt), gamma.castTo(dt), xhat, rstd, dx);
            return new INDArray[] {y, rstd, dx};
        };
        INDArray[] d = run.apply(DataType.DOUBLE), f = run.apply(DataType.FLOAT);
        assertClose("LayerNorm", d[0], f[0]);
        assertClose("LayerNorm rstd", d[1], f[1]);
        assertClose("LayerNorm dx", d[2], f[2]);
    }

    @Test
    void geluInFloatLanesMatchesNd4jErfInDouble() {
        int N = 1200, F = 29;
        INDArray x = random(random, N, F).muli(3), dy = random(random, N, F);
        x.putScalar(0, 0, 9.0);   // beyond the approximation's clamp at |x / sqrt 2| = 4
        x.putScalar(0, 1, -9.0);
        Function<DataType, INDArray[]> run = dt -> {
            INDArray y = Nd4j.zeros(dt, N, F), cdf = Nd4j.zeros(dt, N, F), dx = Nd4j.zeros(dt, N, F);
            Gelu.forward(x.castTo(dt), y, cdf);
            Gelu.backward(dy.castTo(dt), x.castTo(dt), cdf, dx);
            return new INDArray[] {y, cdf, dx};
        };
        INDArray[] d = run.apply(DataType.DOUBLE), f = run.apply(DataType.FLOAT);
        assertClose("GELU", d[0], f[0]);
        assertClose("GELU cdf", d[1], f[1]);
        assertClose("GELU dx", d[2], f[2]);
    }

    @Test
    void kernelsSplitAcrossCoresGiveTheSameBitsAsOneRowAtATime() {
        // the same rows computed inside a large call (split across cores) and alone (one thread)
        int N = 2000, F = 31;
        INDArray gate = random(random, N, F).castTo(DataType.FLOAT), up = random(random, N, F).castTo(DataType.FLOAT);
        INDArray all = Nd4j.zeros(DataType.FLOAT, N, F);
        SwiGlu.forward(gate, up, all);
        for (int r : new int[] {0, N / 2 - 1, N / 2, N - 1}) {
            INDArray one = Nd4j.zeros(DataType.FLOAT, 1, F);
            SwiGlu.forward(gate.getRow(r).reshape(1, F).dup(), up.getRow(r).reshape(1, F).dup(), one);
            assertArrayEquals(one.toFloatVector(), all.getRow(r).toFloatVector(), "row " + r);
        }
    }
}
