package dev.moelora.model.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

class OptimizerTest {
    @Test
    void firstAdamStepMovesEachWeightByLrAgainstTheSignOfItsGradient() {
        // with bias correction, m_hat / sqrt(v_hat) = g / |g| at step 1 (up to eps)
        Parameter p = new Parameter("p", Nd4j.createFromArray(1.0, -2.0, 0.5));
        p.grad().assign(Nd4j.createFromArray(0.3, -4.0, 1e-3));
        AdamW.withDefaults(List.of(p), 0.0).step(0.01);
        assertEquals(0.99, p.value().getDouble(0), 1e-6);
        assertEquals(-1.99, p.value().getDouble(1), 1e-6);
        assertEquals(0.49, p.value().getDouble(2), 1e-4);
    }

    @Test
    void adamWFollowsTorchUpdateRuleOverSeveralStepsWithDecoupledDecay() {
        double lr = 0.05, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        double[] grads = {0.5, -0.25, 1.5, 0.0, -2.0};
        Parameter p = new Parameter("p", Nd4j.createFromArray(0.7));
        AdamW adam = new AdamW(List.of(p), b1, b2, eps, wd);
        // torch.optim.AdamW: p *= 1 - lr*wd; m, v updated; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
        double w = 0.7, m = 0, v = 0;
        for (int t = 1; t <= grads.length; t++) {
            double g = grads[t - 1];
            w *= 1 - lr * wd;
            m = b1 * m + (1 - b1) * g;
            v = b2 * v + (1 - b2) * g * g;
            w -= lr / (1 - Math.pow(b1, t)) * m / (Math.sqrt(v) / Math.sqrt(1 - Math.pow(b2, t)) + eps);
            p.grad().assign(g);
            adam.step(lr);
            assertEquals(w, p.value().getDouble(0), 1e-12, "step " + t);
        }
    }

    @Test
    void clippingScalesTheGlobalNormDownOnly() {
        Parameter a = new Parameter("a", Nd4j.zeros(DataType.DOUBLE, 2)), b = new Parameter("b", Nd4j.zeros(DataType.DOUBLE, 1));
        a.grad().assign(Nd4j.createFromArray(3.0, 0.0));
        b.grad().assign(Nd4j.createFromArray(4.0));
        assertEquals(5.0, AdamW.clipGlobalNorm(List.of(a, b), 1.0), 1e-12);
        assertEquals(3.0 / 5.0, a.grad().getDouble(0), 1e-6);
        assertEquals(4.0 / 5.0, b.grad().getDouble(0), 1e-6);
        assertEquals(1.0, AdamW.clipGlobalNorm(List.of(a, b), 10.0), 1e-5);
        assertEquals(4.0 / 5.0, b.grad().getDouble(0), 1e-6, "below the limit nothing changes");
    }

    @Test
    void scheduleWarmsUpLinearlyThenDecaysToZero() {
        LrSchedule cosine = new LrSchedule(1.0, 4, 14, LrSchedule.Decay.COSINE);
        assertEquals(0.25, cosine.at(0), 1e-12);
        assertEquals(1.0, cosine.at(3), 1e-12);
        assertEquals(1.0, cosine.at(4), 1e-12);
        assertEquals(0.5, cosine.at(9), 1e-12, "half way through the decay");
        LrSchedule linear = new LrSchedule(2.0, 0, 10, LrSchedule.Decay.LINEAR);
        assertEquals(2.0, linear.at(0), 1e-12);
        assertEquals(1.0, linear.at(5), 1e-12);
        assertEquals(0.2, linear.at(9), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new LrSchedule(1, 11, 10, LrSchedule.Decay.LINEAR));
    }
}
