package dev.moelora.model.moelora;

import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.optim.Parameter;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Routing, losses on hand-built cases, step 0, determinism, parameter count and configuration. */
class MoeLoraRoutingTest {
    static final BertConfig TINY = new BertConfig(20, 8, 2, 2, 12, 16, 2, 1e-12);

    static TokenBatch tinyBatch() {
        return new TokenBatch(2, 4, new int[] {1, 5, 7, 2, 1, 9, 2, 0}, new int[] {0, 0, 1, 1, 0, 0, 1, 0},
                new float[] {1, 1, 1, 1, 1, 1, 1, 0});
    }

    static MoeLoraConfig config(int e, int k, int r, double dropout, double bal, double cl, int m) {
        return new MoeLoraConfig(e, k, r, 4, dropout, List.of("query", "value"), bal, cl, 0.5, m);
    }

    @Test
    void freshMoeLoraLeavesTheEncoderOutputUnchanged() {
        BertEncoder plain = BertEncoder.random(TINY, DataType.DOUBLE, 5);
        INDArray before = plain.forward(tinyBatch()).dup();
        BertEncoder adapted = BertEncoder.random(TINY, DataType.DOUBLE, 5);
        MoeLoraAdapters adapters = MoeLora.apply(adapted, MoeLoraConfig.defaults(List.of("query", "value")), 1);
        adapters.setTraining(false);
        assertEquals(0.0, adapted.forward(tinyBatch()).sub(before).amaxNumber().doubleValue(), 0.0, "B = 0 at step 0");
        adapters.setTraining(true);
        adapters.setRowMask(tinyBatch().mask());
        assertEquals(0.0, adapted.forward(tinyBatch()).sub(before).amaxNumber().doubleValue(), 0.0,
                "B = 0 at step 0, with dropout on the experts' input too");
    }

    @Test
    void forwardMatchesAPerTokenReference() {
        SplittableRandom random = new SplittableRandom(21);
        int n = 7, c = 5, d = 3, experts = 4, k = 2, r = 2;
        double alpha = 3;
        FrozenLinear base = new FrozenLinear("m", random(random, d, c), random(random, d));
        INDArray gate = random(random, experts, c).muli(2);
        INDArray[] a = new INDArray[experts], b = new INDArray[experts];
        for (int e = 0; e < experts; e++) {
            a[e] = random(random, r, c);
            b[e] = random(random, d, r);
        }
        MoeLoraLinear m = new MoeLoraLinear(base, gate, a, b,
                new MoeLoraConfig(experts, k, r, alpha, 0, List.of("m"), 0.1, 0.1, 0.5, 8), 1, 3);
        INDArray x = random(random, n, c), y = Nd4j.create(DataType.DOUBLE, n, d);
        m.forward(x, y);
        for (int t = 0; t < n; t++) {
            double[] logits = new double[experts];
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) {
                for (int i = 0; i < c; i++) logits[e] += gate.getDouble(e, i) * x.getDouble(t, i);
                max = Math.max(max, logits[e]);
            }
            double z = 0;
            double[] p = new double[experts];
            for (int e = 0; e < experts; e++) z += p[e] = Math.exp(logits[e] - max);
            for (int e = 0; e < experts; e++) p[e] /= z;
            Integer[] order = {0, 1, 2, 3};
            java.util.Arrays.sort(order, (u, v) -> Double.compare(p[v], p[u]));
            double s = p[order[0]] + p[order[1]];
            for (int o = 0; o < d; o++) {
                double expected = base.bias().getDouble(0, o);
                for (int i = 0; i < c; i++) expected += base.weight().getDouble(o, i) * x.getDouble(t, i);
                for (int j = 0; j < k; j++) {
                    int e = order[j];
                    double h = 0;
                    for (int q = 0; q < r; q++) {
                        double ax = 0;
                        for (int i = 0; i < c; i++) ax += a[e].getDouble(q, i) * x.getDouble(t, i);
                        h += b[e].getDouble(o, q) * ax;
                    }
                    expected += p[e] / s * (alpha / r) * h;
                }
                assertEquals(expected, y.getDouble(t, o), 1e-12, "y[" + t + "," + o + "]");
            }
        }
    }

    @Test
    void everyTokenGoesToKDistinctExpertsWithWeightsSummingToOne() {
        SplittableRandom random = new SplittableRandom(4);
        int n = 40, k = 3, experts = 5;
        FrozenLinear base = new FrozenLinear("m", random(random, 6, 6), random(random, 6));
        INDArray[] a = new INDArray[experts], b = new INDArray[experts];
        for (int e = 0; e < experts; e++) {
            a[e] = random(random, 1, 6);
            b[e] = random(random, 6, 1);
        }
        MoeLoraLinear m = new MoeLoraLinear(base, random(random, experts, 6), a, b,
                new MoeLoraConfig(experts, k, 1, 4, 0, List.of("m"), 0.1, 0.1, 0.5, 8), 1, 3);
        m.forward(random(random, n, 6), Nd4j.create(DataType.DOUBLE, n, 6));
        int[] routing = m.routing();
        double[] g = m.slotWeights();
        for (int t = 0; t < n; t++) {
            double sum = 0;
            for (int j = 0; j < k; j++) {
                assertTrue(routing[t * k + j] >= 0 && routing[t * k + j] < experts);
                if (j > 0) assertTrue(routing[t * k + j] > routing[t * k + j - 1], "distinct experts, ascending");
                assertTrue(g[t * k + j] > 0);
                sum += g[t * k + j];
            }
            assertEquals(1.0, sum, 1e-12, "renormalised weights of token " + t);
        }
        long[] routed = m.stats().routedTokens();
        assertEquals((long) n * k, java.util.Arrays.stream(routed).sum());
    }

    /**
     * E 4, k 1, gate = ln(3) I, tokens one-hot: a token e_j has p_j = 3/6 = 1/2 and 1/6 elsewhere.
     * Real tokens e0, e0, e0, e1 (plus a padding e2 that must not count): f = (3/4, 1/4, 0, 0),
     * P = ((3/2 + 1/6)/4, (3/6 + 1/2)/4, (4/6)/4, (4/6)/4) = (5/12, 1/4, 1/6, 1/6), so
     * L_bal = 4 (3/4 * 5/12 + 1/4 * 1/4) = 3/2; every token's entropy is ln(2)/2 + ln(6)/2.
     */
    @Test
    void balanceLossAndStatisticsOfAHandBuiltRouting() {
        int experts = 4;
        FrozenLinear base = new FrozenLinear("m", Nd4j.zeros(DataType.DOUBLE, 2, 4), Nd4j.zeros(DataType.DOUBLE, 2));
        INDArray gate = Nd4j.eye(4).castTo(DataType.DOUBLE).muli(Math.log(3));
        INDArray[] a = new INDArray[experts], b = new INDArray[experts];
        for (int e = 0; e < experts; e++) {
            a[e] = Nd4j.zeros(DataType.DOUBLE, 1, 4);
            b[e] = Nd4j.zeros(DataType.DOUBLE, 2, 1);
        }
        MoeLoraLinear m = new MoeLoraLinear(base, gate, a, b,
                new MoeLoraConfig(experts, 1, 1, 1, 0, List.of("m"), 2.0, 0.0, 0.5, 8), 0.5, 3);
        INDArray x = Nd4j.create(new double[][] {{1, 0, 0, 0}, {0, 0, 1, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}, {1, 0, 0, 0}});
        m.setRowMask(new float[] {1, 0, 1, 1, 1});
        m.forward(x, Nd4j.create(DataType.DOUBLE, 5, 2));
        RoutingStats s = m.stats();
        assertArrayEquals(new long[] {3, 1, 0, 0}, s.routedTokens());
        assertArrayEquals(new double[] {5.0 / 12, 1.0 / 4, 1.0 / 6, 1.0 / 6}, s.gateMass(), 1e-12);
        assertEquals(1.5, s.balanceLoss(), 1e-12);
        assertEquals(0.5 * Math.log(2) + 0.5 * Math.log(6), s.gateEntropy(), 1e-12);
        assertEquals(0, s.droppedTokens());
        assertEquals(2.0 * 1.5 * 0.5, m.takeAuxiliaryLoss(), 1e-12, "lambda_bal L_bal / modules (weight 0.5 = 2 modules)");
        assertEquals(0.0, m.takeAuxiliaryLoss(), 0.0, "taken once");
    }

    @Test
    void uniformGateWithBalancedRoutingGivesBalanceLossOne() {
        // zero gate: p = 1/E everywhere, so L_bal = E sum_e f_e / E = 1 whatever the routing
        FrozenLinear base = new FrozenLinear("m", Nd4j.zeros(DataType.DOUBLE, 2, 3), Nd4j.zeros(DataType.DOUBLE, 2));
        INDArray[] a = {Nd4j.zeros(DataType.DOUBLE, 1, 3), Nd4j.zeros(DataType.DOUBLE, 1, 3)};
        INDArray[] b = {Nd4j.zeros(DataType.DOUBLE, 2, 1), Nd4j.zeros(DataType.DOUBLE, 2, 1)};
        MoeLoraLinear m = new MoeLoraLinear(base, Nd4j.zeros(DataType.DOUBLE, 2, 3), a, b,
                new MoeLoraConfig(2, 2, 1, 1, 0, List.of("m"), 1.0, 0.0, 0.5, 8), 1, 3);
        m.forward(random(new SplittableRandom(9), 4, 3), Nd4j.create(DataType.DOUBLE, 4, 2));
        assertEquals(1.0, m.stats().balanceLoss(), 1e-15);
        assertArrayEquals(new long[] {4, 4}, m.stats().routedTokens());
        assertEquals(Math.log(2), m.stats().gateEntropy(), 1e-15);
    }

    @Test
    void contrastiveLossSamplesOnlyRealTokens() {
        SplittableRandom random = new SplittableRandom(8);
        int n = 30, experts = 3;
        FrozenLinear base = new FrozenLinear("m", random(random, 4, 4), random(random, 4));
        INDArray[] a = new INDArray[experts], b = new INDArray[experts];
        for (int e = 0; e < experts; e++) {
            a[e] = random(random, 2, 4);
            b[e] = random(random, 4, 2);
        }
        INDArray gate = random(random, experts, 4);
        MoeLoraLinear m = new MoeLoraLinear(base, gate, a, b, new MoeLoraConfig(experts, 1, 2, 2, 0, List.of("m"), 0, 1, 0.5, 100), 1, 3);
        INDArray x = random(random, n, 4), y = Nd4j.create(DataType.DOUBLE, n, 4);
        float[] mask = new float[n];
        for (int i = 0; i < n; i++) mask[i] = i % 3 == 0 ? 0f : 1f;
        m.setRowMask(mask);
        m.forward(x, y);
        double masked = m.takeAuxiliaryLoss();
        assertEquals(20, m.sampledFeatures(), "M = 100: every real token, k = 1 feature each");
        // the same features with the padding rows removed, all real: the same loss
        int real = 20;
        INDArray xr = Nd4j.create(DataType.DOUBLE, real, 4);
        for (int i = 0, j = 0; i < n; i++) if (mask[i] != 0) xr.putRow(j++, x.getRow(i));
        m.setRowMask(null);
        m.forward(xr, Nd4j.create(DataType.DOUBLE, real, 4));
        assertEquals(m.takeAuxiliaryLoss(), masked, 1e-12, "padding rows are no features");
    }

    @Test
    void reseedMakesIdenticalModulesBitIdenticalWhateverTheyDrewBefore() {
        double[][] out = new double[2][];
        double[] aux = new double[2];
        double[][] grads = new double[2][];
        for (int i = 0; i < 2; i++) {
            BertEncoder encoder = BertEncoder.random(TINY, DataType.FLOAT, 3);
            // dropout 0.3 and M = 2 features per expert, of 14 routed slots over 4 experts: both streams draw
            MoeLoraAdapters adapters = MoeLora.apply(encoder, new MoeLoraConfig(4, 2, 2, 4, 0.3, List.of("query", "value"), 0.5, 0.5, 0.5, 2), 9);
            SplittableRandom random = new SplittableRandom(2);
            for (MoeLoraLinear m : adapters.modules()) for (int e = 0; e < 4; e++) m.b(e).value().assign(random(random, 8, 2));
            adapters.setRowMask(tinyBatch().mask());
            if (i == 1) {
                encoder.forward(tinyBatch()); // the second model's streams move on before the reseed
                adapters.takeAuxiliaryLoss();
            }
            adapters.reseed(77);
            out[i] = encoder.forward(tinyBatch()).dup().data().asDouble();
            aux[i] = adapters.takeAuxiliaryLoss();
            encoder.backward(Nd4j.ones(DataType.FLOAT, 8, 8));
            grads[i] = adapters.parameters().stream().flatMapToDouble(p -> java.util.Arrays.stream(p.grad().data().asDouble())).toArray();
        }
        assertArrayEquals(out[0], out[1], 0.0);
        assertEquals(aux[0], aux[1], 0.0);
        assertArrayEquals(grads[0], grads[1], 0.0);
    }

    /** What one training forward of {@link #drawingModule} drew: its output (the dropout mask) and the rows sampled as features. */
    record Draw(double[] y, boolean[] dropped, boolean[] sampled) {}

    static final int DRAW_ROWS = 24, DRAW_C = 16, DRAW_M = 3;

    /**
     * C = D = 16, two experts of rank 16 with A = B = I, top-1, a zero base layer: y = s drop(x)
     * exactly, so y is zero where the mask dropped x and the mask is read off y. Only the
     * contrastive loss has weight, so a backward of dy = 0 gives dx = s dL_cl/dH ⊙ mask: non-zero
     * on exactly the rows sampled as features.
     */
    static MoeLoraLinear drawingModule() {
        SplittableRandom random = new SplittableRandom(12);
        FrozenLinear base = new FrozenLinear("m", Nd4j.zeros(DataType.DOUBLE, DRAW_C, DRAW_C), Nd4j.zeros(DataType.DOUBLE, DRAW_C));
        INDArray eye = Nd4j.eye(DRAW_C).castTo(DataType.DOUBLE);
        INDArray[] a = {eye.dup(), eye.dup()}, b = {eye.dup(), eye.dup()};
        return new MoeLoraLinear(base, random(random, 2, DRAW_C), a, b,
                new MoeLoraConfig(2, 1, DRAW_C, DRAW_C, 0.5, List.of("m"), 0, 1, 0.5, DRAW_M), 1, 3);
    }

    static Draw draw(MoeLoraLinear m, INDArray x) {
        INDArray y = Nd4j.create(DataType.DOUBLE, DRAW_ROWS, DRAW_C), dx = Nd4j.create(DataType.DOUBLE, DRAW_ROWS, DRAW_C);
        m.forward(x, y);
        m.takeAuxiliaryLoss();
        m.backward(Nd4j.zeros(DataType.DOUBLE, DRAW_ROWS, DRAW_C), dx, false);
        boolean[] dropped = new boolean[DRAW_ROWS * DRAW_C], sampled = new boolean[DRAW_ROWS];
        for (int i = 0; i < dropped.length; i++) dropped[i] = y.getDouble(i) == 0.0;
        for (int n = 0; n < DRAW_ROWS; n++) sampled[n] = dx.getRow(n).amaxNumber().doubleValue() > 0;
        return new Draw(y.data().asDouble(), dropped, sampled);
    }

    @Test
    void reseedRestartsTheDropoutMaskAndTheFeatureSample() {
        MoeLoraLinear m = drawingModule();
        INDArray x = random(new SplittableRandom(5), DRAW_ROWS, DRAW_C);
        m.reseed(5);
        Draw first = draw(m, x);
        int[] routing = m.routing();
        for (int e = 0; e < 2; e++) {
            int expert = e;
            long rows = java.util.Arrays.stream(routing).filter(r -> r == expert).count();
            long picked = java.util.stream.IntStream.range(0, DRAW_ROWS).filter(n -> first.sampled()[n] && routing[n] == expert).count();
            assertTrue(rows > DRAW_M, "expert " + e + " has " + rows + " rows, more than M = " + DRAW_M + ": sampling draws");
            assertEquals(DRAW_M, picked, "expert " + e + ": M of its rows are features");
        }
        int dropped = 0;
        for (boolean d : first.dropped()) if (d) dropped++;
        assertTrue(dropped > 0 && dropped < first.dropped().length, "dropout 0.5 drops some inputs and keeps others: " + dropped);

        Draw next = draw(m, x);
        m.reseed(5);
        Draw again = draw(m, x);
        m.reseed(6);
        Draw other = draw(m, x);
        assertArrayEquals(first.y(), again.y(), 0.0, "after reseed(5) the same dropout mask, bit for bit");
        assertArrayEquals(first.sampled(), again.sampled(), "after reseed(5) the same rows sampled as features");
        assertFalse(java.util.Arrays.equals(first.dropped(), next.dropped()), "the dropout stream moves on between forwards");
        assertFalse(java.util.Arrays.equals(first.sampled(), next.sampled()), "the sampling stream moves on between forwards");
        assertFalse(java.util.Arrays.equals(first.dropped(), other.dropped()), "another seed drops other inputs");
        assertFalse(java.util.Arrays.equals(first.sampled(), other.sampled()), "another seed samples other features");
    }

    @Test
    void evaluationAddsNoAuxiliaryLossAndNoDropout() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 3);
        MoeLoraAdapters adapters = MoeLora.apply(encoder, config(4, 2, 2, 0.5, 1, 1, 4), 9);
        SplittableRandom random = new SplittableRandom(2);
        for (MoeLoraLinear m : adapters.modules()) for (int e = 0; e < 4; e++) m.b(e).value().assign(random(random, 8, 2));
        adapters.setTraining(false);
        INDArray first = encoder.forward(tinyBatch()).dup();
        assertEquals(0.0, adapters.takeAuxiliaryLoss(), 0.0);
        assertTrue(Double.isNaN(adapters.stats().get(0).contrastiveLoss()), "no features sampled in evaluation");
        adapters.reseed(1234);
        assertEquals(0.0, encoder.forward(tinyBatch()).sub(first).amaxNumber().doubleValue(), 0.0, "no dropout: nothing random");
    }

    @Test
    void parameterCountIsExpertsTimesRankTimesInPlusOutPlusTheGate() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 3);
        MoeLoraAdapters adapters = MoeLora.apply(encoder, config(4, 2, 2, 0, 0.1, 0.1, 4), 9);
        assertEquals(4, adapters.modules().size(), "query and value of 2 layers");
        long perModule = 4L * (2 * (8 + 8)) + 4L * 8;
        assertEquals(4 * perModule, adapters.trainableParameters());
        List<String> names = adapters.parameters().stream().map(Parameter::name).toList();
        assertEquals("encoder.layer.0.attention.self.query.moe_gate", names.get(0));
        assertEquals("encoder.layer.0.attention.self.query.moe_A.0", names.get(1));
        assertEquals("encoder.layer.0.attention.self.query.moe_B.0", names.get(2));
        assertEquals(List.of(4L, 8L), List.of(adapters.parameters().get(0).value().shape()[0], adapters.parameters().get(0).value().shape()[1]));
        assertTrue(names.contains("encoder.layer.1.attention.self.value.moe_B.3"));
        assertTrue(adapters.describe().startsWith("MoELoRA E=4 top-2 r_e=2"), adapters.describe());
        assertEquals(4, adapters.stats().size());
    }

    @Test
    void statisticsReportMeanOutputCosinesBetweenExperts() {
        // two experts with B chosen so that their outputs point along fixed directions: H_0 along (1, 0), H_1 along (1, 1)
        FrozenLinear base = new FrozenLinear("m", Nd4j.zeros(DataType.DOUBLE, 2, 2), Nd4j.zeros(DataType.DOUBLE, 2));
        INDArray gate = Nd4j.create(new double[][] {{5, 0}, {0, 5}});
        INDArray[] a = {Nd4j.create(new double[][] {{1, 1}}), Nd4j.create(new double[][] {{1, 1}})};
        INDArray[] b = {Nd4j.create(new double[][] {{1}, {0}}), Nd4j.create(new double[][] {{1}, {1}})};
        MoeLoraLinear m = new MoeLoraLinear(base, gate, a, b, new MoeLoraConfig(2, 1, 1, 1, 0, List.of("m"), 0, 0, 0.5, 8), 1, 3);
        m.forward(Nd4j.create(new double[][] {{1, 0}, {0, 1}, {2, 0}}), Nd4j.create(DataType.DOUBLE, 3, 2));
        double[][] cos = m.stats().meanOutputCosine();
        assertEquals(1.0, cos[0][0], 1e-12);
        assertEquals(1.0, cos[1][1], 1e-12);
        assertEquals(1 / Math.sqrt(2), cos[0][1], 1e-12);
        assertEquals(cos[0][1], cos[1][0], 0.0);
    }

    @Test
    void configurationErrorsNameTheirKey() {
        List<String> t = List.of("query");
        assertKey("adapter.experts", () -> new MoeLoraConfig(0, 1, 1, 16, 0, t, 0, 0, 0.1, 4));
        assertKey("adapter.top-k", () -> new MoeLoraConfig(4, 5, 1, 16, 0, t, 0, 0, 0.1, 4));
        assertKey("adapter.top-k", () -> new MoeLoraConfig(4, 0, 1, 16, 0, t, 0, 0, 0.1, 4));
        assertKey("adapter.expert-rank", () -> new MoeLoraConfig(4, 2, 0, 16, 0, t, 0, 0, 0.1, 4));
        assertKey("adapter.alpha", () -> new MoeLoraConfig(4, 2, 1, 0, 0, t, 0, 0, 0.1, 4));
        assertKey("adapter.dropout", () -> new MoeLoraConfig(4, 2, 1, 16, 1, t, 0, 0, 0.1, 4));
        assertKey("adapter.targets", () -> new MoeLoraConfig(4, 2, 1, 16, 0, List.of(), 0, 0, 0.1, 4));
        assertKey("adapter.balance-weight", () -> new MoeLoraConfig(4, 2, 1, 16, 0, t, -0.1, 0, 0.1, 4));
        assertKey("adapter.contrastive-weight", () -> new MoeLoraConfig(4, 2, 1, 16, 0, t, 0, -1, 0.1, 4));
        assertKey("adapter.temperature", () -> new MoeLoraConfig(4, 2, 1, 16, 0, t, 0, 0, 0, 4));
        assertKey("adapter.max-features-per-expert", () -> new MoeLoraConfig(4, 2, 1, 16, 0, t, 0, 0, 0.1, 1));
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 1);
        var e = assertThrows(IllegalArgumentException.class,
                () -> MoeLora.apply(encoder, MoeLoraConfig.defaults(List.of("q_proj")), 1));
        assertTrue(e.getMessage().contains("adapter.targets") && e.getMessage().contains("q_proj")
                && e.getMessage().contains("encoder.layer.0.attention.self.query"), e.getMessage());
    }

    @Test
    void defaultsAreThePapersSettings() {
        MoeLoraConfig d = MoeLoraConfig.defaults(List.of("query", "value"));
        assertEquals(List.of(8, 2, 1, 32), List.of(d.experts(), d.topK(), d.expertRank(), d.maxFeaturesPerExpert()));
        assertEquals(List.of(16.0, 0.05, 0.01, 0.1, 0.1), List.of(d.alpha(), d.dropout(), d.balanceWeight(), d.contrastiveWeight(), d.temperature()));
    }

    static void assertKey(String key, org.junit.jupiter.api.function.Executable build) {
        var e = assertThrows(IllegalArgumentException.class, build);
        assertTrue(e.getMessage().startsWith(key + " "), e.getMessage());
    }
}
