package dev.moelora.model.moelora;

import static dev.moelora.model.nn.FiniteDifference.check;
import static dev.moelora.model.nn.FiniteDifference.dot;
import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.optim.Parameter;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * MoELoRA's backward against finite differences of loss = &lt;y, R&gt; + the module's auxiliary loss
 * (scale 1), on tiny shapes in double, with non-zero B and gate so that routing is non-trivial.
 * Every perturbed forward asserts that the routing did not change, so the finite differences
 * measure the same piecewise-smooth function as the analytic gradient.
 */
class MoeLoraGradientTest {
    static final int N = 6, C = 5, D = 4, E = 4, K = 2, R = 2;

    /** A module over a random base layer, with random gate and experts (B != 0). */
    static MoeLoraLinear module(SplittableRandom random, double balance, double contrastive, int maxFeatures, double dropout, long seed) {
        FrozenLinear base = new FrozenLinear("encoder.layer.0.attention.self.query", random(random, D, C), random(random, D));
        INDArray gate = random(random, E, C).muli(3); // wide logits: top-k margins far above the FD step
        INDArray[] a = new INDArray[E], b = new INDArray[E];
        for (int e = 0; e < E; e++) {
            a[e] = random(random, R, C);
            b[e] = random(random, D, R);
        }
        MoeLoraConfig config = new MoeLoraConfig(E, K, R, 3.0, dropout, List.of("query"), balance, contrastive, 0.5, maxFeatures);
        return new MoeLoraLinear(base, gate, a, b, config, 1.0, seed);
    }

    /** Forward, assert the routing is the reference routing, return &lt;y, R&gt; + auxiliary loss. */
    static DoubleSupplier loss(MoeLoraLinear m, INDArray x, INDArray y, INDArray r, int[] routing) {
        return () -> {
            m.forward(x, y);
            assertArrayEquals(routing, m.routing(), "a finite-difference step changed the routing");
            return dot(y, r) + m.takeAuxiliaryLoss();
        };
    }

    static void checkAll(String what, long dataSeed, double balance, double contrastive, float[] mask) {
        SplittableRandom random = new SplittableRandom(dataSeed);
        MoeLoraLinear m = module(random, balance, contrastive, 100, 0.0, 1);
        INDArray x = random(random, N, C), r = random(random, N, D), y = Nd4j.create(DataType.DOUBLE, N, D);
        m.setRowMask(mask);
        m.forward(x, y);
        int[] routing = m.routing();
        assertTrue(distinct(routing) > K, what + ": the routing uses more than k experts, so the gate matters");
        if (balance > 0) {
            // with every expert equally loaded, f_e = 1/E and L_bal = sum_e P_e = 1 whatever p: a vacuous check
            assertTrue(!balanced(routing, mask), what + ": the routing is unbalanced, so L_bal depends on the gate");
        }
        m.takeAuxiliaryLoss();
        INDArray dx = Nd4j.create(DataType.DOUBLE, N, C);
        m.backward(r, dx, false);
        DoubleSupplier loss = loss(m, x, y, r, routing);
        check(what + " dW_g", m.gate().value(), m.gate().grad(), loss);
        for (int e = 0; e < E; e++) {
            check(what + " dA_" + e, m.a(e).value(), m.a(e).grad(), loss);
            check(what + " dB_" + e, m.b(e).value(), m.b(e).grad(), loss);
        }
        check(what + " dx", x, dx, loss);
    }

    static boolean balanced(int[] routing, float[] mask) {
        int[] load = new int[E];
        for (int i = 0; i < routing.length; i++) if (mask == null || mask[i / K] != 0) load[routing[i]]++;
        return java.util.Arrays.stream(load).distinct().count() == 1;
    }

    static int distinct(int[] routing) {
        return (int) java.util.Arrays.stream(routing).distinct().count();
    }

    @Test
    void taskGradientFlowsThroughGateTopKWeightsExpertsAndInput() {
        checkAll("task only", 7, 0, 0, null);
    }

    @Test
    void balanceLossGradientReachesTheGate() {
        checkAll("balance only", 11, 0.7, 0, null);
    }

    @Test
    void contrastiveLossGradientReachesTheExpertsAndInput() {
        checkAll("contrastive only", 7, 0, 0.9, null);
    }

    @Test
    void bothAuxiliaryLossesTogetherMatchFiniteDifferences() {
        checkAll("both", 11, 0.7, 0.9, null);
    }

    /**
     * With a row mask, the finite differences match (forward and backward agree), and the padding
     * rows are really left out: changing their inputs changes neither auxiliary loss, and when
     * the task puts no gradient on them (dy = 0 there) their dx is exactly 0.
     */
    @Test
    void paddingRowsAreLeftOutOfTheAuxiliaryLossesAndTheirGradients() {
        float[] mask = {1, 1, 0, 1, 1, 0};
        checkAll("masked", 11, 0.7, 0.9, mask);

        SplittableRandom random = new SplittableRandom(11);
        MoeLoraLinear m = module(random, 0.7, 0.9, 100, 0.0, 1);
        INDArray x = random(random, N, C), r = random(random, N, D), y = Nd4j.create(DataType.DOUBLE, N, D);
        m.setRowMask(mask);
        m.forward(x, y);
        double aux = m.takeAuxiliaryLoss();
        assertTrue(aux > 0, "auxiliary losses to compare: " + aux);
        INDArray moved = x.dup();
        for (int i = 0; i < N; i++) if (mask[i] == 0) moved.getRow(i).assign(random(random, 1, C).muli(5));
        m.forward(moved, y);
        assertEquals(aux, m.takeAuxiliaryLoss(), 1e-12, "the padding rows' inputs do not enter the auxiliary losses");

        m.forward(x, y);
        m.takeAuxiliaryLoss();
        for (int i = 0; i < N; i++) if (mask[i] == 0) r.getRow(i).assign(0.0);
        INDArray dx = Nd4j.create(DataType.DOUBLE, N, C);
        m.backward(r, dx, false);
        for (int i = 0; i < N; i++) {
            double largest = dx.getRow(i).amaxNumber().doubleValue();
            if (mask[i] == 0) assertEquals(0.0, largest, 0.0, "no auxiliary gradient reaches padding row " + i);
            else assertTrue(largest > 0, "real row " + i + " has a gradient");
        }
    }

    @Test
    void auxiliaryGradientsAreMultipliedByTheAuxiliaryLossScale() {
        double[][] grads = new double[3][];
        double[] scales = {0.0, 0.5, 1.0};
        for (int i = 0; i < 3; i++) {
            SplittableRandom random = new SplittableRandom(7);
            MoeLoraLinear m = module(random, 0.7, 0.9, 100, 0.0, 1);
            INDArray x = random(random, N, C), r = random(random, N, D), y = Nd4j.create(DataType.DOUBLE, N, D);
            m.setAuxiliaryLossScale(scales[i]);
            m.forward(x, y);
            m.backward(r, Nd4j.create(DataType.DOUBLE, N, C), false);
            grads[i] = Nd4j.concat(0, m.gate().grad().reshape(-1), m.a(1).grad().reshape(-1), m.b(2).grad().reshape(-1)).toDoubleVector();
        }
        double largest = 0;
        for (int j = 0; j < grads[0].length; j++) largest = Math.max(largest, Math.abs(grads[2][j] - grads[0][j]));
        assertTrue(largest > 1e-3, "the auxiliary losses add a gradient to scale: largest " + largest);
        for (int j = 0; j < grads[0].length; j++) {
            double half = grads[1][j] - grads[0][j], full = grads[2][j] - grads[0][j];
            assertEquals(full / 2, half, 1e-12, "the auxiliary part of gradient " + j + " scales linearly");
        }
    }

    static final BertConfig TINY = new BertConfig(20, 8, 2, 2, 12, 16, 2, 1e-12);

    static TokenBatch tinyBatch() {
        return new TokenBatch(2, 4, new int[] {1, 5, 7, 2, 1, 9, 2, 0}, new int[] {0, 0, 1, 1, 0, 0, 1, 0},
                new float[] {1, 1, 1, 1, 1, 1, 1, 0});
    }

    @Test
    void encoderWithMoeLoraOnQueryAndValueMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(5);
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 11);
        MoeLoraAdapters adapters = MoeLora.apply(encoder, new MoeLoraConfig(E, K, R, 4, 0.0, List.of("query", "value"),
                0.5, 0.5, 0.5, 100), 2);
        assertEquals(4, adapters.modules().size());
        for (MoeLoraLinear m : adapters.modules()) {
            m.gate().value().assign(random(random, E, TINY.hidden()).muli(3));
            for (int e = 0; e < E; e++) m.b(e).value().assign(random(random, TINY.hidden(), R));
        }
        TokenBatch batch = tinyBatch();
        adapters.setRowMask(batch.mask());
        INDArray r = random(random, batch.rows(), TINY.hidden());
        for (int t = 0; t < TINY.hidden(); t++) r.putScalar(7, t, 0.0); // the padded row's output is not used
        encoder.forward(batch);
        List<int[]> routing = adapters.modules().stream().map(MoeLoraLinear::routing).toList();
        adapters.takeAuxiliaryLoss();
        encoder.backward(r);
        DoubleSupplier loss = () -> {
            double l = dot(encoder.forward(batch), r) + adapters.takeAuxiliaryLoss();
            for (int i = 0; i < routing.size(); i++) {
                assertArrayEquals(routing.get(i), adapters.modules().get(i).routing(), "a finite-difference step changed the routing");
            }
            return l;
        };
        for (Parameter p : adapters.parameters()) check(p.name(), p.value(), p.grad().dup(), loss);
    }
}
