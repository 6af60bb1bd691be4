package dev.moelora.model.moelora;

import static dev.moelora.model.nn.FiniteDifference.check;
import static dev.moelora.model.nn.FiniteDifference.dot;
import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.nn.FrozenLinear;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The expert capacity (adapter.capacity-factor): which slots drop on a hand-built routing, what a
 * dropped slot contributes (nothing), that evaluation stays dropless, and the backward with drops
 * against finite differences.
 */
class MoeLoraCapacityTest {
    /**
     * E 2, k 1, gate row 0 = (1, 0), row 1 = 0; x_n = (a_n, 1), so logit_0 = a_n, logit_1 = 0 and
     * every row picks expert 0 with p_0 = sigmoid(a_n). a = (1, 3, 2, 0.5) on real rows and 5 on a
     * padding row. Capacity c = 1: C = ceil(1 * 1 * 4 / 2) = 2, so expert 0 keeps rows 1 and 2 (the
     * two highest p among real rows; the padding row, with the highest p of all, goes first) and
     * rows 0, 3 and 4 get the base output alone.
     */
    @Test
    void anOverloadedExpertKeepsItsHighestProbabilityRealRowsAndTheOthersGetTheBaseAlone() {
        int experts = 2;
        SplittableRandom random = new SplittableRandom(3);
        FrozenLinear base = new FrozenLinear("m", random(random, 3, 2), random(random, 3));
        INDArray gate = Nd4j.create(new double[][] {{1, 0}, {0, 0}});
        INDArray[] a = {random(random, 1, 2), random(random, 1, 2)}, b = {random(random, 3, 1), random(random, 3, 1)};
        MoeLoraConfig dropless = new MoeLoraConfig(experts, 1, 1, 2, 0, List.of("m"), 0.5, 0, 0.5, 8);
        MoeLoraLinear capped = new MoeLoraLinear(base, gate, a, b, dropless.withCapacityFactor(1.0), 1, 3);
        MoeLoraLinear free = new MoeLoraLinear(base, gate, a, b, dropless, 1, 3);
        INDArray x = Nd4j.create(new double[][] {{1, 1}, {3, 1}, {2, 1}, {0.5, 1}, {5, 1}});
        float[] mask = {1, 1, 1, 1, 0};
        capped.setRowMask(mask);
        free.setRowMask(mask);

        INDArray y = Nd4j.create(DataType.DOUBLE, 5, 3), yFree = Nd4j.create(DataType.DOUBLE, 5, 3), yBase = Nd4j.create(DataType.DOUBLE, 5, 3);
        capped.forward(x, y);
        free.forward(x, yFree);
        base.forward(x, yBase);
        assertArrayEquals(new int[] {0, 0, 0, 0, 0}, capped.routing(), "every row chooses expert 0");
        assertArrayEquals(new boolean[] {true, false, false, true, true}, capped.droppedSlots());
        for (int n : new int[] {1, 2}) assertArrayEquals(yFree.getRow(n).toDoubleVector(), y.getRow(n).toDoubleVector(), 0.0, "kept row " + n);
        for (int n : new int[] {0, 3, 4}) assertArrayEquals(yBase.getRow(n).toDoubleVector(), y.getRow(n).toDoubleVector(), 0.0, "dropped row " + n);
        assertTrue(yFree.getRow(0).sub(yBase.getRow(0)).amaxNumber().doubleValue() > 1e-3, "the expert changes a row it takes");

        RoutingStats s = capped.stats();
        assertEquals(2, s.droppedTokens(), "real rows 0 and 3; the padding row is not counted");
        assertArrayEquals(new long[] {4, 0}, s.routedTokens(), "the router's choice, before the drop");
        assertEquals(free.stats().balanceLoss(), s.balanceLoss(), 0.0, "the balance loss counts the choice, not what was kept");
        assertEquals(0, free.stats().droppedTokens());

        capped.setTraining(false);
        INDArray yEval = Nd4j.create(DataType.DOUBLE, 5, 3);
        capped.forward(x, yEval);
        assertArrayEquals(yFree.data().asDouble(), yEval.data().asDouble(), 0.0, "evaluation is dropless");
        assertEquals(0, capped.stats().droppedTokens());
    }

    /** Equal probabilities: the lower row stays. */
    @Test
    void tiesKeepTheLowerRow() {
        FrozenLinear base = new FrozenLinear("m", Nd4j.zeros(DataType.DOUBLE, 2, 2), Nd4j.zeros(DataType.DOUBLE, 2));
        INDArray[] a = {Nd4j.ones(DataType.DOUBLE, 1, 2), Nd4j.ones(DataType.DOUBLE, 1, 2)};
        INDArray[] b = {Nd4j.ones(DataType.DOUBLE, 2, 1), Nd4j.ones(DataType.DOUBLE, 2, 1)};
        MoeLoraLinear m = new MoeLoraLinear(base, Nd4j.create(new double[][] {{1, 0}, {0, 0}}), a, b,
                new MoeLoraConfig(2, 1, 1, 1, 0, List.of("m"), 0, 0, 0.5, 8, 0.5), 1, 3);
        m.forward(Nd4j.create(new double[][] {{1, 0}, {1, 0}, {1, 0}, {1, 0}}), Nd4j.create(DataType.DOUBLE, 4, 2));
        // C = ceil(0.5 * 1 * 4 / 2) = 1
        assertArrayEquals(new boolean[] {false, true, true, true}, m.droppedSlots());
        assertEquals(3, m.stats().droppedTokens());
    }

    @Test
    void aNegativeOrInfiniteCapacityFactorIsRefusedByItsKey() {
        MoeLoraConfig c = MoeLoraConfig.defaults(List.of("q"));
        for (double bad : new double[] {-0.5, Double.POSITIVE_INFINITY, Double.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.withCapacityFactor(bad));
            assertTrue(e.getMessage().startsWith("adapter.capacity-factor"), e.getMessage());
        }
    }

    /**
     * The backward with dropped slots (k 2, and a capacity that drops several of them, real and
     * padding) against finite differences of &lt;y, R&gt; + both auxiliary losses; every perturbed
     * forward must route and drop as the analytic one did.
     */
    @Test
    void backwardWithDroppedSlotsMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(11);
        int n = MoeLoraGradientTest.N, c = MoeLoraGradientTest.C, d = MoeLoraGradientTest.D, e = MoeLoraGradientTest.E;
        FrozenLinear base = new FrozenLinear("m", random(random, d, c), random(random, d));
        INDArray gate = random(random, e, c).muli(3);
        INDArray[] a = new INDArray[e], b = new INDArray[e];
        for (int i = 0; i < e; i++) {
            a[i] = random(random, 2, c);
            b[i] = random(random, d, 2);
        }
        MoeLoraLinear m = new MoeLoraLinear(base, gate, a, b,
                new MoeLoraConfig(e, 2, 2, 3.0, 0, List.of("m"), 0.7, 0.9, 0.5, 100, 0.6), 1.0, 1);
        INDArray x = random(random, n, c), r = random(random, n, d), y = Nd4j.create(DataType.DOUBLE, n, d);
        float[] mask = {1, 1, 1, 1, 1, 0};
        m.setRowMask(mask);
        m.forward(x, y);
        int[] routing = m.routing();
        boolean[] dropped = m.droppedSlots();
        int drops = 0;
        for (boolean dr : dropped) if (dr) drops++;
        assertTrue(m.stats().droppedTokens() > 0 && drops < dropped.length / 2, "some slots drop, most stay: " + drops + " of " + dropped.length);
        m.takeAuxiliaryLoss();
        INDArray dx = Nd4j.create(DataType.DOUBLE, n, c);
        m.backward(r, dx, false);
        DoubleSupplier loss = () -> {
            m.forward(x, y);
            assertArrayEquals(routing, m.routing(), "a finite-difference step changed the routing");
            assertArrayEquals(dropped, m.droppedSlots(), "a finite-difference step changed which slots drop");
            return dot(y, r) + m.takeAuxiliaryLoss();
        };
        check("capacity dW_g", m.gate().value(), m.gate().grad(), loss);
        for (int i = 0; i < e; i++) {
            check("capacity dA_" + i, m.a(i).value(), m.a(i).grad(), loss);
            check("capacity dB_" + i, m.b(i).value(), m.b(i).grad(), loss);
        }
        check("capacity dx", x, dx, loss);
    }
}
