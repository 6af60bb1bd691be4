package dev.moelora.model.tiedlora;

import static dev.moelora.model.nn.FiniteDifference.check;
import static dev.moelora.model.nn.FiniteDifference.dot;
import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.tiedlora.TiedLoraLinear.Factor;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Tied-LoRA's forward and backward, alone and inside the encoder, against finite differences. */
class TiedLoraGradientTest {
    final SplittableRandom random = new SplittableRandom(7);
    static final BertConfig TINY = new BertConfig(20, 8, 2, 2, 12, 16, 2, 1e-12);

    /** y = x W^T + b + s · (((x A^T) * u) B^T) * v, from plain matrix products. */
    static INDArray reference(FrozenLinear base, INDArray x, INDArray a, INDArray b, INDArray u, INDArray v, double s) {
        INDArray h = x.mmul(a.transpose());
        if (u != null) h = h.mulRowVector(u.reshape(1, u.length()));
        INDArray out = h.mmul(b.transpose());
        if (v != null) out = out.mulRowVector(v.reshape(1, v.length()));
        return x.mmul(base.weight().transpose()).addRowVector(base.bias()).addi(out.muli(s));
    }

    @Test
    void moduleWithEveryFactorTrainedMatchesFiniteDifferences() {
        FrozenLinear base = new FrozenLinear("m", random(random, 3, 4), random(random, 3));
        Parameter a = new Parameter("A", random(random, 2, 4)), b = new Parameter("B", random(random, 3, 2));
        Parameter u = new Parameter("u", random(random, 2)), v = new Parameter("v", random(random, 3));
        TiedLoraLinear m = new TiedLoraLinear(base, Factor.of(a), Factor.of(b), u, v, 1.5, 0.0, 1);
        INDArray x = random(random, 5, 4), r = random(random, 5, 3), y = Nd4j.create(DataType.DOUBLE, 5, 3);
        m.forward(x, y);
        INDArray expected = reference(base, x, a.value(), b.value(), u.value(), v.value(), 1.5);
        assertEquals(0.0, expected.sub(y).amaxNumber().doubleValue(), 1e-12, "y = W x + b + s v ⊙ B (u ⊙ A x)");
        INDArray dx = Nd4j.create(DataType.DOUBLE, 5, 4);
        m.backward(r, dx, false);
        for (Parameter p : List.of(a, b, u, v)) {
            check("d" + p.name(), p.value(), p.grad(), () -> { m.forward(x, y); return dot(y, r); });
        }
        check("dx", x, dx, () -> { m.forward(x, y); return dot(y, r); });
    }

    @Test
    void moduleWithFrozenFactorsAndConstantScalesMatchesFiniteDifferences() {
        // tl1's shape: A frozen, u = v = 1 not stored; only B and x have gradients
        FrozenLinear base = new FrozenLinear("m", random(random, 3, 4), random(random, 3));
        INDArray a = random(random, 2, 4);
        Parameter b = new Parameter("B", random(random, 3, 2));
        TiedLoraLinear m = new TiedLoraLinear(base, Factor.frozen(a), Factor.of(b), null, null, 2.0, 0.0, 1);
        INDArray x = random(random, 5, 4), r = random(random, 5, 3), y = Nd4j.create(DataType.DOUBLE, 5, 3);
        m.forward(x, y);
        assertEquals(0.0, reference(base, x, a, b.value(), null, null, 2.0).sub(y).amaxNumber().doubleValue(), 1e-12);
        INDArray dx = random(random, 5, 4), dxBefore = dx.dup();
        m.backward(r, dx, true);
        check("dB", b.value(), b.grad(), () -> { m.forward(x, y); return dot(y, r); });
        check("dx accumulated", x, dx.sub(dxBefore), () -> { m.forward(x, y); return dot(y, r); });
    }

    @Test
    void moduleWithDropoutBackpropagatesThroughTheSameMask() {
        FrozenLinear base = new FrozenLinear("m", random(random, 3, 4), random(random, 3));
        INDArray a = random(random, 2, 4), b = random(random, 3, 2), u = random(random, 2), v = random(random, 3);
        INDArray x = random(random, 6, 4), r = random(random, 6, 3), y = Nd4j.create(DataType.DOUBLE, 6, 3);
        // a fresh module with the same seed draws the same mask, so the loss is a function of x, A, B, u, v alone
        Supplier<TiedLoraLinear> fresh = () -> new TiedLoraLinear(base, Factor.of(new Parameter("A", a)),
                Factor.of(new Parameter("B", b)), new Parameter("u", u), new Parameter("v", v), 2.0, 0.5, 99);
        TiedLoraLinear m = fresh.get();
        m.forward(x, y);
        INDArray dx = Nd4j.create(DataType.DOUBLE, 6, 4);
        m.backward(r, dx, false);
        check("dropout dA", a, m.a().trained().grad(), () -> { fresh.get().forward(x, y); return dot(y, r); });
        check("dropout dB", b, m.b().trained().grad(), () -> { fresh.get().forward(x, y); return dot(y, r); });
        check("dropout du", u, m.u().grad(), () -> { fresh.get().forward(x, y); return dot(y, r); });
        check("dropout dv", v, m.v().grad(), () -> { fresh.get().forward(x, y); return dot(y, r); });
        check("dropout dx", x, dx, () -> { fresh.get().forward(x, y); return dot(y, r); });
        m.setTraining(false);
        m.forward(x, y);
        assertEquals(0.0, reference(base, x, a, b, u, v, 2.0).sub(y).amaxNumber().doubleValue(), 1e-12, "no dropout outside training");
    }

    static TokenBatch tinyBatch() {
        return new TokenBatch(2, 4, new int[] {1, 5, 7, 2, 1, 9, 2, 0}, new int[] {0, 0, 1, 1, 0, 0, 1, 0},
                new float[] {1, 1, 1, 1, 1, 1, 1, 0});
    }

    /** Forward, backward of sum(out * r) with non-zero B and v, then every parameter's gradient against finite differences. */
    private TiedLoraAdapters checkEncoder(TiedLoraConfig config) {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 11);
        TiedLoraAdapters adapters = TiedLora.apply(encoder, config, 2);
        for (Parameter p : adapters.parameters()) p.value().assign(random(random, p.value().shape()));
        TokenBatch batch = tinyBatch();
        INDArray r = random(random, batch.rows(), TINY.hidden());
        for (int t = 0; t < TINY.hidden(); t++) r.putScalar(7, t, 0.0); // the padded row's output is not used
        encoder.forward(batch);
        encoder.backward(r);
        for (Parameter p : adapters.parameters()) {
            check(p.name(), p.value(), p.grad().dup(), () -> dot(encoder.forward(batch), r));
        }
        return adapters;
    }

    /** The module of layer {@code layer} whose name ends with {@code suffix}. */
    static TiedLoraLinear module(TiedLoraAdapters adapters, int layer, String suffix) {
        return adapters.modules().stream().filter(m -> m.name().startsWith("encoder.layer." + layer + ".") && m.name().endsWith(suffix))
                .findFirst().orElseThrow();
    }

    @Test
    void tl6TiedGradientsAreTheSumOverLayers() {
        TiedLoraConfig config = new TiedLoraConfig("tl6", 2, 4, 0.0, List.of("query", "value", "intermediate.dense"), false);
        TiedLoraAdapters adapters = checkEncoder(config);
        // the tensor each check nudged is used by both layers: its finite difference is the sum of both layers' terms
        for (String type : List.of("query", "value", "intermediate.dense")) {
            TiedLoraLinear first = module(adapters, 0, type), second = module(adapters, 1, type);
            assertSame(first.a().trained(), second.a().trained(), type + ": one A for both layers");
            assertSame(first.b().trained(), second.b().trained(), type + ": one B for both layers");
            assertNotSame(first.u(), second.u(), type + ": u per layer");
            assertNotSame(first.v(), second.v(), type + ": v per layer");
        }
    }

    @Test
    void aSharedByQueryKeyAndValueOfAllLayersGetsAllTheirGradients() {
        TiedLoraConfig config = new TiedLoraConfig("tl6", 2, 4, 0.0, List.of("query", "key", "value"), true);
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 3);
        TiedLoraAdapters adapters = TiedLora.apply(encoder, config, 2);
        Parameter shared = adapters.modules().get(0).a().trained();
        assertEquals("encoder.layer.*.attention.self.qkv.tied_lora_A", shared.name());
        for (TiedLoraLinear m : adapters.modules()) assertSame(shared, m.a().trained(), m.name());
        checkEncoder(config);
    }

    @Test
    void perLayerASharedByQueryKeyAndValueMatchesFiniteDifferences() {
        // lora preset with sharing: one A per layer for its q, k and v
        TiedLoraAdapters adapters = checkEncoder(new TiedLoraConfig("lora", 2, 4, 0.0, List.of("query", "key", "value"), true));
        for (int layer = 0; layer < 2; layer++) {
            Parameter a = module(adapters, layer, "query").a().trained();
            assertSame(a, module(adapters, layer, "key").a().trained(), "layer " + layer + ": key uses the query's A");
            assertSame(a, module(adapters, layer, "value").a().trained(), "layer " + layer + ": value uses the query's A");
            assertNotSame(module(adapters, layer, "query").b().trained(), module(adapters, layer, "key").b().trained(), "B per module");
        }
        assertNotSame(module(adapters, 0, "query").a().trained(), module(adapters, 1, "query").a().trained(), "A per layer");
    }

    @Test
    void veraMatchesFiniteDifferencesInTheEncoder() {
        checkEncoder(new TiedLoraConfig("vera", 3, 3, 0.0, List.of("query", "value"), false));
    }
}
