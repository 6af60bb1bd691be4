package dev.moelora.model.nn;

import static dev.moelora.model.nn.FiniteDifference.check;
import static dev.moelora.model.nn.FiniteDifference.dot;
import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Finite-difference checks of every op's backward, on tiny shapes in double. */
class OpGradientTest {
    final SplittableRandom random = new SplittableRandom(42);

    @Test
    void layerNormBackwardMatchesFiniteDifferences() {
        int N = 3, C = 5;
        LayerNorm ln = new LayerNorm(C, 1e-5);
        INDArray x = random(random, N, C), gamma = random(random, 1, C), beta = random(random, 1, C), r = random(random, N, C);
        INDArray y = Nd4j.create(DataType.DOUBLE, N, C), xhat = Nd4j.create(DataType.DOUBLE, N, C);
        INDArray rstd = Nd4j.create(DataType.DOUBLE, N, 1);
        Runnable fwd = () -> ln.forward(x, gamma, beta, y, xhat, rstd);
        fwd.run();
        INDArray dx = Nd4j.create(DataType.DOUBLE, N, C);
        ln.backward(r, gamma, xhat, rstd, dx);
        check("LayerNorm dx", x, dx, () -> { fwd.run(); return dot(y, r); });
    }

    @Test
    void layerNormOutputHasZeroMeanUnitVarianceBeforeAffine() {
        int N = 2, C = 6;
        LayerNorm ln = new LayerNorm(C, 0);
        INDArray x = random(random, N, C);
        INDArray y = Nd4j.create(DataType.DOUBLE, N, C);
        ln.forward(x, Nd4j.ones(DataType.DOUBLE, 1, C), Nd4j.zeros(DataType.DOUBLE, 1, C), y, Nd4j.create(DataType.DOUBLE, N, C),
                Nd4j.create(DataType.DOUBLE, N, 1));
        for (int n = 0; n < N; n++) {
            INDArray row = y.getRow(n);
            assertEquals(0.0, row.meanNumber().doubleValue(), 1e-12);
            assertEquals(1.0, row.mul(row).meanNumber().doubleValue(), 1e-12);
        }
    }

    @Test
    void geluMatchesErfDefinitionAndItsBackward() {
        INDArray x = random(random, 4, 3).muli(3), r = random(random, 4, 3);
        INDArray y = Nd4j.create(DataType.DOUBLE, 4, 3), cdf = Nd4j.create(DataType.DOUBLE, 4, 3);
        Gelu.forward(x, y, cdf);
        // GELU(1) = 0.5 * (1 + erf(1/sqrt 2)) = Phi(1) = 0.8413447460685429 (standard normal table)
        INDArray one = Nd4j.valueArrayOf(new long[] {1, 1}, 1.0, DataType.DOUBLE), oneOut = Nd4j.create(DataType.DOUBLE, 1, 1);
        Gelu.forward(one, oneOut, Nd4j.create(DataType.DOUBLE, 1, 1));
        assertEquals(0.8413447460685429, oneOut.getDouble(0), 1e-12);
        INDArray dx = Nd4j.create(DataType.DOUBLE, 4, 3);
        Gelu.backward(r, x, cdf, dx);
        check("GELU dx", x, dx, () -> { Gelu.forward(x, y, cdf); return dot(y, r); });
    }

    @Test
    void attentionBackwardMatchesFiniteDifferencesWithPadding() {
        int B = 2, T = 3, H = 2, C = 4, N = B * T;
        INDArray q = random(random, N, C), k = random(random, N, C), v = random(random, N, C), r = random(random, N, C);
        INDArray keyBias = Nd4j.zeros(DataType.DOUBLE, B, T);
        keyBias.putScalar(1, 2, Attention.MASKED); // second sequence has 2 real tokens
        INDArray att = Nd4j.create(DataType.DOUBLE, B, H, T, T), scratch = Nd4j.create(DataType.DOUBLE, B, H, T, C / H);
        INDArray ctx = Nd4j.create(DataType.DOUBLE, N, C);
        Runnable fwd = () -> Attention.forward(q, k, v, keyBias, B, T, H, att, scratch, ctx);
        fwd.run();
        assertEquals(0.0, att.getDouble(1, 0, 0, 2), 0.0, "a padded key gets no attention");
        INDArray dq = Nd4j.create(DataType.DOUBLE, N, C), dk = Nd4j.create(DataType.DOUBLE, N, C), dv = Nd4j.create(DataType.DOUBLE, N, C);
        Attention.backward(r, q, k, v, att, B, T, H, Nd4j.create(DataType.DOUBLE, B, H, T, T),
                Nd4j.create(DataType.DOUBLE, B, H, T, C / H), dq, dk, dv);
        check("attention dq", q, dq, () -> { fwd.run(); return dot(ctx, r); });
        check("attention dk", k, dk, () -> { fwd.run(); return dot(ctx, r); });
        check("attention dv", v, dv, () -> { fwd.run(); return dot(ctx, r); });
    }

    @Test
    void meanPoolAveragesRealTokensAndBackpropagates() {
        int B = 2, T = 3, C = 2;
        float[] mask = {1, 1, 1, 1, 0, 0};
        INDArray w = Nd4j.create(DataType.DOUBLE, B, B * T);
        MeanPool.weights(mask, B, T, w);
        INDArray h = random(random, B * T, C), r = random(random, B, C), pooled = Nd4j.create(DataType.DOUBLE, B, C);
        MeanPool.forward(w, h, pooled);
        assertEquals((h.getDouble(0, 1) + h.getDouble(1, 1) + h.getDouble(2, 1)) / 3, pooled.getDouble(0, 1), 1e-12);
        assertEquals(h.getDouble(3, 0), pooled.getDouble(1, 0), 1e-12);
        INDArray dh = Nd4j.create(DataType.DOUBLE, B * T, C);
        MeanPool.backward(w, r, dh);
        check("mean pool dh", h, dh, () -> { MeanPool.forward(w, h, pooled); return dot(pooled, r); });
    }

    @Test
    void softmaxCrossEntropyGradientMatchesFiniteDifferences() {
        double[] logits = {0.3, -1.2, 2.0, 0.7, 0.1};
        double[] grad = new double[5];
        double loss = SoftmaxCrossEntropy.forwardBackward(logits, 1, 3, 2, grad, 1.0);
        double z = Math.exp(-1.2) + Math.exp(2.0) + Math.exp(0.7);
        assertEquals(-Math.log(Math.exp(0.7) / z), loss, 1e-12);
        assertEquals(0.0, grad[0]);
        for (int i = 1; i < 4; i++) {
            double saved = logits[i];
            logits[i] = saved + 1e-6;
            double up = SoftmaxCrossEntropy.forwardBackward(logits, 1, 3, 2, null, 1.0);
            logits[i] = saved - 1e-6;
            double down = SoftmaxCrossEntropy.forwardBackward(logits, 1, 3, 2, null, 1.0);
            logits[i] = saved;
            assertEquals((up - down) / 2e-6, grad[i], 1e-8, "dlogit " + i);
        }
    }
}
