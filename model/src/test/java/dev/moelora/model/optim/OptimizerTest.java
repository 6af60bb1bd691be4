package dev.moelora.model.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

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
        AdamW clipping = AdamW.withDefaults(List.of(a, b), 0.0);
        assertEquals(5.0, clipping.clipGradients(1.0), 1e-12);
        assertEquals(3.0 / 5.0, a.grad().getDouble(0), 1e-6);
        assertEquals(4.0 / 5.0, b.grad().getDouble(0), 1e-6);
        assertEquals(1.0, clipping.clipGradients(10.0), 1e-5);
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

    @Test
    void floatUpdateRoundsExactlyAsTheNd4jOpsItReplaced() {
        // the update before it became a Java loop, one ND4J op per term: the reference for float rounding
        double lr = 0.01, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        SplittableRandom random = new SplittableRandom(7);
        INDArray w0 = random(random, DataType.FLOAT, 3, 5);
        Parameter p = new Parameter("p", w0.dup());
        AdamW adam = new AdamW(List.of(p), b1, b2, eps, wd);
        INDArray w = w0.dup(), m = Nd4j.zeros(DataType.FLOAT, 3, 5), v = Nd4j.zeros(DataType.FLOAT, 3, 5), s = Nd4j.zeros(DataType.FLOAT, 3, 5);
        for (int t = 1; t <= 4; t++) {
            INDArray g = random(random, DataType.FLOAT, 3, 5);
            double bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t);
            w.muli(1 - lr * wd);
            m.muli(b1).addi(g.mul(1 - b1, s));
            v.muli(b2).addi(s.assign(g).muli(g).muli(1 - b2));
            Transforms.sqrt(s.assign(v), false).divi(Math.sqrt(bc2)).addi(eps).rdivi(m);
            w.subi(s.muli(lr / bc1));
            p.grad().assign(g);
            adam.step(lr);
            assertArrayEquals(floats(w), floats(p.value()), "parameter, step " + t);
            assertArrayEquals(floats(m), floats(adam.moments().get(0).first()), "first moment, step " + t);
            assertArrayEquals(floats(v), floats(adam.moments().get(0).second()), "second moment, step " + t);
        }
    }

    @Test
    void aParameterThatIsAViewAtAnOffsetIsUpdatedInPlaceAndItsNeighboursAreLeftAlone() {
        SplittableRandom random = new SplittableRandom(11);
        INDArray whole = random(random, DataType.FLOAT, 5, 4);
        INDArray before = whole.dup();
        INDArray rows = whole.get(NDArrayIndex.interval(1, 3), NDArrayIndex.all()); // elements [4, 12) of whole
        Parameter view = new Parameter("view", rows), copy = new Parameter("copy", rows.dup());
        INDArray g = random(random, DataType.FLOAT, 2, 4);
        view.grad().assign(g);
        copy.grad().assign(g);
        AdamW.withDefaults(List.of(view), 0.1).step(0.05);
        AdamW.withDefaults(List.of(copy), 0.1).step(0.05);
        assertArrayEquals(floats(copy.value()), floats(whole.get(NDArrayIndex.interval(1, 3), NDArrayIndex.all())));
        assertTrue(copy.value().neq(before.get(NDArrayIndex.interval(1, 3), NDArrayIndex.all())).all(), "the step moved every element");
        for (int r : new int[] {0, 3, 4}) assertArrayEquals(floats(before.getRow(r)), floats(whole.getRow(r)), "row " + r);
    }

    @Test
    void layoutsTheLoopsCannotWalkFailAtConstructionNamingTheParameter() {
        INDArray m = Nd4j.rand(DataType.FLOAT, 3, 4);
        for (INDArray bad : List.of(m.transpose(), m.get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3)), Nd4j.rand(DataType.FLOAT, 'f', 3, 4))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Parameter("q.lora_A", bad));
            assertTrue(e.getMessage().contains("'q.lora_A'") && e.getMessage().contains("contiguous c-order"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Parameter("h", Nd4j.zeros(DataType.HALF, 2)));
        assertTrue(e.getMessage().contains("'h'") && e.getMessage().contains("HALF"), e.getMessage());
        // shapes whose strides differ from c-order only along size-1 dimensions are one run of memory
        new Parameter("column", Nd4j.rand(DataType.FLOAT, 'f', 3, 1));
        new Parameter("row", m.getRow(1));
    }

    @Test
    void zeroingClearsEveryGradientElement() {
        Parameter p = new Parameter("p", Nd4j.zeros(DataType.FLOAT, 2, 3)), q = new Parameter("q", Nd4j.zeros(DataType.DOUBLE, 4));
        p.grad().assign(1.5);
        q.grad().assign(-2.0);
        AdamW.withDefaults(List.of(p, q), 0.0).zeroGrad();
        assertEquals(0.0, p.grad().amaxNumber().doubleValue());
        assertEquals(0.0, q.grad().amaxNumber().doubleValue());
    }

    @Test
    void aWarmStepWithClippingAndZeroingAllocatesNothingOnTheJavaHeap() {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        threads.setThreadAllocatedMemoryEnabled(true);
        SplittableRandom random = new SplittableRandom(3);
        INDArray whole = random(random, DataType.FLOAT, 6, 8);
        List<Parameter> params = List.of(new Parameter("a", random(random, DataType.FLOAT, 4, 8)),
                new Parameter("b", whole.get(NDArrayIndex.interval(2, 4), NDArrayIndex.all())),
                new Parameter("c", random(random, DataType.DOUBLE, 3, 2)));
        AdamW adam = AdamW.withDefaults(params, 0.01);
        long[] allocated = new long[3];
        for (int round = 0; round < allocated.length; round++) { // the first rounds warm up: class loading, the JIT
            for (Parameter p : params) p.grad().assign(random(random, p.grad().dataType(), p.grad().shape()));
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int s = 0; s < 5; s++) {
                double limit = 1e-3 / (1 << s); // half the last clipped norm: every step scales
                double norm = adam.clipGradients(limit);
                adam.step(0.01);
                if (norm <= limit) throw new AssertionError("norm " + norm + " did not exceed the clipping limit " + limit);
            }
            adam.zeroGrad();
            allocated[round] = threads.getCurrentThreadAllocatedBytes() - before;
        }
        assertEquals(0, allocated[allocated.length - 1], "bytes per round: " + java.util.Arrays.toString(allocated));
    }

    private static float[] floats(INDArray a) {
        return a.dup('c').data().asFloat();
    }

    private static INDArray random(SplittableRandom random, DataType dtype, long... shape) {
        INDArray a = Nd4j.create(dtype, shape);
        for (long i = 0; i < a.length(); i++) a.putScalar(i, random.nextDouble(-1, 1));
        return a;
    }
}
