package dev.moelora.model.tiedlora;

import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** What each preset ties, trains and counts, and how it starts; configuration errors. */
class TiedLoraPresetTest {
    static final BertConfig TINY = TiedLoraGradientTest.TINY; // C = 8, L = 2, F = 12
    static final List<String> TINY_TARGETS = List.of("query", "value", "intermediate.dense");

    /** A model that is just a list of linear layers, for real module names and shapes without the rest of a model. */
    static final class LinearList implements AdaptableModel {
        private final List<Linear> linears;
        private final DataType dtype;

        LinearList(List<Linear> linears, DataType dtype) {
            this.linears = new ArrayList<>(linears);
            this.dtype = dtype;
        }

        @Override public List<Linear> linears() { return List.copyOf(linears); }
        @Override public DataType dataType() { return dtype; }

        @Override
        public void replace(Linear layer) {
            for (int i = 0; i < linears.size(); i++) if (linears.get(i).name().equals(layer.name())) linears.set(i, layer);
        }
    }

    static Stream<Arguments> presetsWithAndWithoutQkvSharing() {
        return TiedLoraConfig.PRESETS.keySet().stream().sorted().flatMap(p -> Stream.of(Arguments.of(p, false), Arguments.of(p, true)));
    }

    @ParameterizedTest
    @MethodSource("presetsWithAndWithoutQkvSharing")
    void everyPresetLeavesTheEncoderOutputUnchangedAtStepZero(String preset, boolean share) {
        TokenBatch batch = TiedLoraGradientTest.tinyBatch();
        INDArray before = BertEncoder.random(TINY, DataType.DOUBLE, 5).forward(batch).dup();
        BertEncoder adapted = BertEncoder.random(TINY, DataType.DOUBLE, 5);
        TiedLora.apply(adapted, new TiedLoraConfig(preset, 4, 8, 0.0, List.of("query", "key", "value", "intermediate.dense"), share), 1);
        assertEquals(0.0, adapted.forward(batch).sub(before).amaxNumber().doubleValue(), 0.0, preset + ": step 0 is the base model");
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "vera", "tl1", "tl2", "tl3", "tl4", "tl5", "tl6"})
    void everyPresetTrainsItsFormulasCountOnATinyEncoder(String preset) {
        // r = 4, L = 2; query and value are 8 -> 8, intermediate.dense is 8 -> 12; worked out by hand from the table
        Map<String, Long> expected = Map.of("lora", 416L, "vera", 80L, "tl1", 112L, "tl2", 136L,
                "tl3", 168L, "tl4", 192L, "tl5", 208L, "tl6", 288L);
        TiedLoraConfig config = new TiedLoraConfig(preset, 4, 8, 0.0, TINY_TARGETS, false);
        TiedLoraAdapters adapters = TiedLora.apply(BertEncoder.random(TINY, DataType.DOUBLE, 1), config, 1);
        long formula = 2 * formula(config, 2, 8, 8) + formula(config, 2, 8, 12);
        assertEquals(expected.get(preset), formula, "the config's formula");
        assertEquals(expected.get(preset), adapters.trainableParameters(), "the parameters the adapters hand the optimizer");
        assertEquals(adapters.parameters().size(), adapters.parameters().stream().distinct().count(), "each tensor listed once");
        assertTrue(adapters.describe().contains("Tied-LoRA " + preset + " r=4"), adapters.describe());
    }

    static BertEncoder miniLm;

    /** MiniLM's real module names and shapes; its random init takes a few seconds, so it is built once. */
    static synchronized List<Linear> miniLmLinears() {
        if (miniLm == null) miniLm = BertEncoder.random(BertConfig.miniLmL6(), DataType.FLOAT, 1);
        return miniLm.linears();
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "vera", "tl1", "tl2", "tl3", "tl4", "tl5", "tl6"})
    void everyPresetTrainsItsFormulasCountOnMiniLm(String preset) {
        // r = 8, L = 6 on query, value, attention.output.dense (384 -> 384), intermediate.dense (384 -> 1536)
        // and output.dense (1536 -> 384), worked out by hand from the table
        Map<String, Long> expected = Map.of("lora", 294_912L, "vera", 18_672L, "tl1", 24_576L, "tl2", 24_816L,
                "tl3", 43_008L, "tl4", 43_248L, "tl5", 49_152L, "tl6", 67_824L);
        TiedLoraConfig config = new TiedLoraConfig(preset, 8, 16, 0.0, List.of("query", "value", "intermediate.dense", "output.dense"), false);
        TiedLoraAdapters adapters = TiedLora.apply(new LinearList(miniLmLinears(), DataType.FLOAT), config, 1);
        assertEquals(30, adapters.modules().size(), "5 module types x 6 layers");
        long formula = 3 * formula(config, 6, 384, 384)
                + formula(config, 6, 384, 1536) + formula(config, 6, 1536, 384);
        assertEquals(expected.get(preset), formula, "the config's formula");
        assertEquals(expected.get(preset), adapters.trainableParameters());
    }

    @Test
    void tiedTensorsAreNamedByModuleTypeAndPerLayerTensorsByModule() {
        List<String> tl6 = TiedLora.apply(BertEncoder.random(TINY, DataType.DOUBLE, 1),
                new TiedLoraConfig("tl6", 2, 2, 0.0, TINY_TARGETS, false), 1).parameters().stream().map(Parameter::name).toList();
        assertEquals(3 + 3 + 6 + 6, tl6.size(), "A and B per module type, u and v per module");
        assertTrue(tl6.containsAll(List.of("encoder.layer.*.attention.self.query.tied_lora_A", "encoder.layer.*.intermediate.dense.tied_lora_B",
                "encoder.layer.0.attention.self.query.tied_lora_u", "encoder.layer.1.attention.self.value.tied_lora_v")), tl6.toString());
        List<String> lora = TiedLora.apply(BertEncoder.random(TINY, DataType.DOUBLE, 1),
                new TiedLoraConfig("lora", 2, 2, 0.0, TINY_TARGETS, false), 1).parameters().stream().map(Parameter::name).toList();
        assertEquals(12, lora.size(), "A and B per module, no u or v");
        assertTrue(lora.containsAll(List.of("encoder.layer.0.attention.self.query.tied_lora_A", "encoder.layer.1.intermediate.dense.tied_lora_B")),
                lora.toString());
    }

    @Test
    void moduleTypesDropTheLayerIndexOfBertAndLlamaNames() {
        assertEquals("encoder.layer.*.attention.self.query", TiedLora.moduleType("encoder.layer.3.attention.self.query"));
        assertEquals("model.layers.*.self_attn.q_proj", TiedLora.moduleType("model.layers.12.self_attn.q_proj"));
        assertEquals("layers.*.mlp.up_proj", TiedLora.moduleType("layers.0.mlp.up_proj"));
        assertEquals("pooler.dense", TiedLora.moduleType("pooler.dense"));
        assertEquals("encoder.sublayer.3.dense", TiedLora.moduleType("encoder.sublayer.3.dense"));
        assertEquals("model.layers.*.self_attn.qkv_proj", TiedLora.factorOwner("model.layers.3.self_attn.k_proj", true, true));
        assertEquals("model.layers.3.self_attn.qkv_proj", TiedLora.factorOwner("model.layers.3.self_attn.v_proj", false, true));
        assertEquals("model.layers.*.mlp.up_proj", TiedLora.factorOwner("model.layers.3.mlp.up_proj", true, true));
    }

    @Test
    void llamaQkvShareOneTiedAAcrossAllLayers() {
        SplittableRandom random = new SplittableRandom(1);
        List<Linear> linears = new ArrayList<>();
        for (int l = 0; l < 3; l++) {
            for (String m : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")) {
                linears.add(new FrozenLinear("model.layers." + l + "." + m, random(random, 6, 6), random(random, 6)));
            }
        }
        TiedLoraAdapters adapters = TiedLora.apply(new LinearList(linears, DataType.DOUBLE),
                new TiedLoraConfig("tl5", 2, 2, 0.0, List.of("q_proj", "k_proj", "v_proj", "o_proj"), true), 1);
        assertEquals(List.of("model.layers.*.self_attn.qkv_proj.tied_lora_A", "model.layers.*.self_attn.q_proj.tied_lora_B",
                        "model.layers.*.self_attn.k_proj.tied_lora_B", "model.layers.*.self_attn.v_proj.tied_lora_B",
                        "model.layers.*.self_attn.o_proj.tied_lora_A", "model.layers.*.self_attn.o_proj.tied_lora_B"),
                adapters.parameters().stream().map(Parameter::name).toList());
        // one A (2 x 6) for q, k, v, one for o, four B (6 x 2)
        assertEquals(2 * 12 + 4 * 12, adapters.trainableParameters());
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "vera", "tl1", "tl2", "tl3", "tl4", "tl5", "tl6"})
    void adamWMovesEveryTrainedFactorAndNoFrozenOne(String preset) {
        // frozen factor tensors per preset on query and value: vera's A and B per type, tl1-tl4's A per type
        Map<String, Integer> frozenTensors = Map.of("lora", 0, "vera", 4, "tl1", 2, "tl2", 2, "tl3", 2, "tl4", 2, "tl5", 0, "tl6", 0);
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 9);
        TiedLoraAdapters adapters = TiedLora.apply(encoder, new TiedLoraConfig(preset, 2, 4, 0.1, List.of("query", "value"), false), 3);
        Map<INDArray, INDArray> before = new IdentityHashMap<>();
        for (TiedLoraLinear m : adapters.modules()) {
            for (INDArray t : new INDArray[] {m.a().value(), m.b().value(), ((FrozenLinear) m.base()).weight(),
                    m.u() == null ? null : m.u().value(), m.v() == null ? null : m.v().value()}) {
                if (t != null) before.putIfAbsent(t, t.dup());
            }
        }
        Map<INDArray, Parameter> trained = new IdentityHashMap<>();
        for (Parameter p : adapters.parameters()) trained.put(p.value(), p);
        assertEquals(frozenTensors.get(preset), before.size() - trained.size() - 4, "frozen factors (besides 4 base weights)");

        SplittableRandom random = new SplittableRandom(4);
        AdamW adamW = AdamW.withDefaults(adapters.parameters(), 0.0);
        TokenBatch batch = TiedLoraGradientTest.tinyBatch();
        // two steps: at step 0 a zero B or v blocks the gradient of the factors before it
        for (int step = 0; step < 2; step++) {
            adapters.reseed(step);
            for (Parameter p : adapters.parameters()) p.zeroGrad();
            encoder.forward(batch);
            encoder.backward(random(random, batch.rows(), TINY.hidden()));
            adamW.step(1e-2);
        }
        for (Map.Entry<INDArray, INDArray> e : before.entrySet()) {
            Parameter p = trained.get(e.getKey());
            if (p != null) {
                assertNotEquals(e.getValue(), e.getKey(), p.name() + " is trained and moved");
            } else {
                assertEquals(e.getValue(), e.getKey(), "a frozen tensor " + java.util.Arrays.toString(e.getKey().shape()) + " never changes");
            }
        }
    }

    @Test
    void anUnknownPresetIsAnErrorNamingTheKey() {
        var e = assertThrows(IllegalArgumentException.class, () -> new TiedLoraConfig("tl7", 4, 8, 0, List.of("query"), false));
        assertTrue(e.getMessage().contains("adapter.preset") && e.getMessage().contains("tl7") && e.getMessage().contains("tl6"), e.getMessage());
    }

    @Test
    void aRankBelowOneIsAnErrorNamingTheKey() {
        var e = assertThrows(IllegalArgumentException.class, () -> new TiedLoraConfig("tl6", 0, 8, 0, List.of("query"), false));
        assertTrue(e.getMessage().contains("adapter.rank"), e.getMessage());
    }

    @Test
    void targetsThatMatchNothingAreAnErrorNamingTheKey() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 1);
        var e = assertThrows(IllegalArgumentException.class,
                () -> TiedLora.apply(encoder, new TiedLoraConfig("tl6", 2, 4, 0, List.of("q_proj"), false), 1));
        assertTrue(e.getMessage().contains("adapter.targets") && e.getMessage().contains("q_proj")
                && e.getMessage().contains("encoder.layer.0.attention.self.query"), e.getMessage());
    }

    @Test
    void outsideTrainingTheOutputDoesNotDependOnTheDropoutSeed() {
        TokenBatch batch = TiedLoraGradientTest.tinyBatch();
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 2);
        TiedLoraAdapters adapters = TiedLora.apply(encoder, new TiedLoraConfig("tl6", 2, 4, 0.5, List.of("query"), false), 1);
        SplittableRandom random = new SplittableRandom(6);
        for (Parameter p : adapters.parameters()) p.value().assign(random(random, p.value().shape()));
        adapters.setTraining(false);
        adapters.reseed(1);
        INDArray first = encoder.forward(batch).dup();
        adapters.reseed(2);
        assertEquals(first, encoder.forward(batch));
        adapters.setTraining(true);
        assertNotEquals(first, encoder.forward(batch), "dropout 0.5 changes the training forward");
    }

    /**
     * The paper's count of trainable parameters for one module type with L layers (DESIGN.md,
     * "Methods"), written out per preset here, not derived from the implementation, so that it
     * checks it. Without {@code shareAcrossQkv}; sharing A counts it once for q, k and v together.
     */
    static long formula(TiedLoraConfig config, int layers, long dIn, long dOut) {
        long r = config.rank(), L = layers;
        return switch (config.preset()) {
            case "lora" -> L * r * (dIn + dOut);
            case "vera" -> L * (r + dOut);
            case "tl1" -> r * dOut;
            case "tl2" -> r * dOut + L * r;
            case "tl3" -> r * dOut + L * dOut;
            case "tl4" -> r * dOut + L * (r + dOut);
            case "tl5" -> r * (dIn + dOut);
            case "tl6" -> r * (dIn + dOut) + L * (r + dOut);
            default -> throw new IllegalStateException(config.preset());
        };
    }
}
