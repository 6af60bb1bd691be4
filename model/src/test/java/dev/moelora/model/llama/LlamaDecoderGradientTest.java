package dev.moelora.model.llama;

import static dev.moelora.model.nn.FiniteDifference.check;
import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.lora.LoraLinear;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.moelora.MoeLoraRouting;
import dev.moelora.model.nn.FiniteDifference;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.tiedlora.TiedLora;
import dev.moelora.model.tiedlora.TiedLoraAdapters;
import dev.moelora.model.tiedlora.TiedLoraConfig;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The whole decoder's backward, through LoRA, Tied-LoRA and MoELoRA on every projection, against
 * central finite differences in double ({@link FiniteDifference#check}: step 1e-6, relative error
 * |a - n| / max(1e-3, |a| + |n|) below 1e-5), for every trainable tensor: every entry, or with
 * MoELoRA, whose forward is slow, a fixed sample of {@link #SAMPLES} entries of each. Each runs on
 * the plain {@link #TINY} decoder and on {@link #BIASED}, whose every projection adds a frozen bias
 * and whose RoPE is Llama 3.1's rescaled one: the adapters' gradients must flow through biased
 * projections below them exactly as through plain ones.
 */
class LlamaDecoderGradientTest {
    /** V 11, C 8, F 12, L 2, H 2 query heads over KV 1 (grouped-query), D 4. */
    static final LlamaConfig TINY = new LlamaConfig(11, 8, 12, 2, 2, 1, 1e-5, 10000, false, 16, 1, List.of(2));
    /**
     * TINY with attention_bias and mlp_bias (a bias on all seven projections, random) and llama3
     * rope_scaling (factor 8, low 1, high 4, original 16): of D/2 = 2 frequencies (wavelengths 6.3
     * and 628) the first is interpolated, the second slowed by the factor.
     */
    static final LlamaConfig BIASED = new LlamaConfig(11, 8, 12, 2, 2, 1, 1e-5, 10000, false, 16, 1, List.of(2),
            LlamaConfig.LLAMA, new Rope.Llama3Scaling(8, 1, 4, 16), java.util.Set.copyOf(LlamaConfig.PROJECTIONS));
    static final List<String> ALL_PROJECTIONS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    /** Two sequences of 4 tokens; the second has 3 real tokens and a response of 1. */
    static DecoderBatch batch() {
        return new DecoderBatch(2, 4, new int[] {1, 5, 7, 3, 1, 9, 4, 0}, new float[] {1, 1, 1, 1, 1, 1, 1, 0});
    }

    /** Entries per tensor checked where the forward is too slow for all of them (a fixed sample per tensor name). */
    static final int SAMPLES = 4;

    static final float[] LOSS_MASK = {0, 0, 1, 1, 0, 0, 1, 0};

    static double loss(LlamaDecoder decoder, INDArray dLogits) {
        DecoderBatch b = batch();
        INDArray logits = decoder.forward(b);
        return NextTokenLoss.forwardBackward(logits, b, LOSS_MASK, dLogits);
    }

    @Test
    void modulesCarryHuggingFaceNamesSoPeftTargetsMatch() {
        LlamaDecoder decoder = LlamaDecoder.random(TINY, DataType.DOUBLE, 1);
        List<String> names = decoder.linears().stream().map(Linear::name).toList();
        assertEquals(14, names.size());
        assertEquals("model.layers.0.self_attn.q_proj", names.get(0));
        assertEquals("model.layers.1.mlp.down_proj", names.get(13));
        assertEquals(4, Lora.apply(decoder, new LoraConfig(2, 4, 0, List.of("q_proj", "v_proj")), 1).size());
    }

    @ParameterizedTest
    @ValueSource(strings = {"plain", "biased"})
    void freshLoraLeavesTheLogitsUnchanged(String which) {
        INDArray before = LlamaDecoder.random(config(which), DataType.DOUBLE, 5).forward(batch()).dup();
        LlamaDecoder adapted = LlamaDecoder.random(config(which), DataType.DOUBLE, 5);
        Lora.apply(adapted, new LoraConfig(2, 4, 0, ALL_PROJECTIONS), 1);
        assertEquals(0.0, adapted.forward(batch()).sub(before).amaxNumber().doubleValue(), 0.0, "B = 0 at step 0");
    }

    static LlamaConfig config(String name) {
        return name.equals("biased") ? BIASED : TINY;
    }

    @Test
    void theBiasedConfigPutsItsRopeFrequenciesInTheInterpolatedAndTheSlowedBand() {
        double[] plain = Rope.inverseFrequencies(4, 10000, null), scaled = Rope.inverseFrequencies(4, 10000, BIASED.ropeScaling());
        assertTrue(scaled[0] < plain[0] && scaled[0] > plain[0] / 8, "interpolated: " + scaled[0]);
        assertEquals(plain[1] / 8, scaled[1], 1e-18, "slowed by the factor");
        assertEquals(2 * 7, BIASED.weightShapes().keySet().stream().filter(n -> n.endsWith(".bias")).count());
    }

    @ParameterizedTest
    @ValueSource(strings = {"plain", "biased"})
    void decoderWithLoraOnEveryProjectionMatchesFiniteDifferences(String which) {
        SplittableRandom random = new SplittableRandom(9);
        LlamaDecoder decoder = LlamaDecoder.random(config(which), DataType.DOUBLE, 11);
        List<LoraLinear> adapters = Lora.apply(decoder, new LoraConfig(2, 4, 0, ALL_PROJECTIONS), 2);
        assertEquals(14, adapters.size());
        for (LoraLinear l : adapters) l.b().value().assign(random(random, l.b().value().shape()));
        assertThrows(IllegalStateException.class, () -> decoder.backward(Nd4j.zeros(DataType.DOUBLE, 8, 11)), "backward needs a forward");
        INDArray dLogits = Nd4j.create(DataType.DOUBLE, 8, TINY.vocabSize());
        loss(decoder, dLogits);
        decoder.backward(dLogits);
        INDArray scratch = Nd4j.create(DataType.DOUBLE, 8, TINY.vocabSize());
        for (Parameter p : Lora.parameters(adapters)) {
            assertTrue(p.grad().amaxNumber().doubleValue() > 0, p.name() + " receives a gradient");
            check(p.name(), p.value(), p.grad().dup(), () -> loss(decoder, scratch));
        }
    }

    /**
     * tl6 on all seven projections: A and B tied across both layers (one pair per module type, so
     * each receives the sum of two layers' gradients), u and v per module, every one trained and
     * random (B and v non-zero, so every factor has a gradient).
     */
    @ParameterizedTest
    @ValueSource(strings = {"plain", "biased"})
    void decoderWithTiedLoraTl6OnEveryProjectionMatchesFiniteDifferences(String which) {
        SplittableRandom random = new SplittableRandom(10);
        LlamaDecoder decoder = LlamaDecoder.random(config(which), DataType.DOUBLE, 11);
        TiedLoraAdapters adapters = TiedLora.apply(decoder, new TiedLoraConfig("tl6", 2, 4, 0.0, ALL_PROJECTIONS, false), 2);
        List<String> names = adapters.parameters().stream().map(Parameter::name).toList();
        assertEquals(7 + 7 + 14 + 14, names.size(), "one A and one B per module type, u and v per module: " + names);
        assertTrue(names.containsAll(List.of("model.layers.*.self_attn.q_proj.tied_lora_A", "model.layers.*.mlp.down_proj.tied_lora_B",
                "model.layers.0.self_attn.k_proj.tied_lora_u", "model.layers.1.mlp.up_proj.tied_lora_v")), names.toString());
        for (Parameter p : adapters.parameters()) p.value().assign(random(random, p.value().shape()));
        INDArray dLogits = Nd4j.create(DataType.DOUBLE, 8, TINY.vocabSize());
        loss(decoder, dLogits);
        decoder.backward(dLogits);
        INDArray scratch = Nd4j.create(DataType.DOUBLE, 8, TINY.vocabSize());
        for (Parameter p : adapters.parameters()) {
            assertTrue(p.grad().amaxNumber().doubleValue() > 0, p.name() + " receives a gradient");
            check(p.name(), p.value(), p.grad().dup(), () -> loss(decoder, scratch));
        }
    }

    /**
     * MoELoRA on all seven projections (E 4, top-2, r_e 2), with random gates (wide logits) and
     * non-zero B. The checked objective is what training minimises: the next-token loss plus the
     * modules' auxiliary losses (lambda_bal 0.7, lambda_cl 0.9, M = 3 features per expert, so
     * sampling draws; padding rows excluded by the row mask). Dropout 0; the adapters are reseeded
     * before every forward, so every perturbed forward samples the same features, and every one
     * asserts that the routing did not change. Each tensor is checked on {@link #SAMPLES} entries.
     */
    @ParameterizedTest
    @ValueSource(strings = {"plain", "biased"})
    void decoderWithMoeLoraOnEveryProjectionAndItsAuxiliaryLossesMatchesFiniteDifferences(String which) {
        LlamaDecoder decoder = LlamaDecoder.random(config(which), DataType.DOUBLE, 11);
        MoeLoraAdapters adapters = MoeLora.apply(decoder, new MoeLoraConfig(4, 2, 2, 4, 0.0, ALL_PROJECTIONS, 0.7, 0.9, 0.5, 3), 2);
        MoeLoraRouting.randomise(adapters, new SplittableRandom(which.equals("biased") ? 13 : 12), 3);
        DecoderBatch b = batch();
        adapters.setRowMask(b.mask());
        INDArray dLogits = Nd4j.create(DataType.DOUBLE, 8, TINY.vocabSize());
        adapters.reseed(4);
        loss(decoder, dLogits);
        double aux = adapters.takeAuxiliaryLoss();
        assertTrue(aux > 0, "the auxiliary losses are part of the objective: " + aux);
        List<int[]> routing = MoeLoraRouting.of(adapters);
        assertEquals(14, routing.size());
        for (int[] r : routing) assertTrue(MoeLoraRouting.distinctExperts(r) > 2, "the routing uses more than k experts, so the gate matters");
        decoder.backward(dLogits);
        INDArray scratch = Nd4j.create(DataType.DOUBLE, 8, TINY.vocabSize());
        DoubleSupplier objective = () -> {
            adapters.reseed(4);
            double task = loss(decoder, scratch);
            MoeLoraRouting.assertUnchanged(routing, adapters);
            return task + adapters.takeAuxiliaryLoss();
        };
        // 126 tensors; a forward through 14 MoELoRA modules is slow enough that each gets a sample of entries
        for (Parameter p : adapters.parameters()) check(p.name(), p.value(), p.grad().dup(), objective, SAMPLES);
    }

    @Test
    void malformedBatchesAreRefused() {
        LlamaDecoder decoder = LlamaDecoder.random(TINY, DataType.DOUBLE, 1);
        assertThrows(IllegalArgumentException.class, () -> new DecoderBatch(1, 3, new int[] {0, 1, 2}, new float[] {0, 1, 1}), "left padding");
        var e = assertThrows(IllegalArgumentException.class, () -> decoder.forward(new DecoderBatch(1, 2, new int[] {3, 11}, new float[] {1, 1})));
        assertTrue(e.getMessage().contains("vocabulary of 11"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> decoder.reserve(1, 17), "longer than max_position_embeddings");
    }
}
