package dev.moelora.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.lora.LoraLinear;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import dev.moelora.model.train.AdapterStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The decoder with LoRA on every projection against PyTorch (model/src/test/python/llama_golden.py,
 * which writes the checkpoints and the references under resources/llama/): logits of a right-padded
 * batch, the next-token loss over response tokens, every LoRA A and B gradient, and the loss after
 * each of three AdamW steps (torch.optim.AdamW, lr 0.01, weight decay 0.01). Cases: grouped-
 * query attention with an untied lm_head (F32), tied embeddings (BF16), one key/value head in a
 * sharded checkpoint (F16), Llama 3.1's rope_scaling (llama3-rope: head_dim 32 with frequencies in
 * all three bands), Qwen2 with random q/k/v biases and tied embeddings (qwen2-bias), SmolLM2-135M's
 * attention shapes (smollm2-shape: hidden 576, 9 query heads over 3 key/value heads, head_dim 64,
 * tied, BF16). The reference ran in float64 on the stored values.
 *
 * <p>Error measure: max |ours - reference| / max |reference| over the tensor (plain relative error
 * for losses). Tolerances: 1e-9 when the decoder runs in double (the two float64 computations
 * differ only in summation order; ~1e-15 measured); 1e-4 when it runs in float, for logits,
 * losses and gradients alike (~1e-6 measured).
 */
class LlamaGoldenTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static Path caseDir(String name) throws Exception {
        return Path.of(LlamaGoldenTest.class.getResource("/llama/" + name + "/config.json").toURI()).getParent();
    }

    static double relativeError(INDArray ours, INDArray reference) {
        INDArray r = reference.castTo(DataType.DOUBLE), o = ours.castTo(DataType.DOUBLE).reshape(r.shape());
        return o.sub(r).amaxNumber().doubleValue() / r.amaxNumber().doubleValue();
    }

    /** The reference batch of a case's reference.safetensors. */
    static DecoderBatch referenceBatch(SafetensorsFile ref) throws java.io.IOException {
        INDArray idsRef = ref.read("input_ids"), maskRef = ref.read("attention_mask");
        int B = (int) idsRef.size(0), T = (int) idsRef.size(1);
        int[] ids = new int[B * T];
        float[] mask = new float[B * T];
        for (int i = 0; i < B * T; i++) {
            ids[i] = idsRef.getInt(i / T, i % T);
            mask[i] = maskRef.getFloat(i / T, i % T);
        }
        return new DecoderBatch(B, T, ids, mask);
    }

    /** The case's committed LoRA (lora/) put on the decoder's projections. */
    static List<Parameter> applyLora(Path dir, LlamaDecoder decoder) throws Exception {
        JsonNode peft = JSON.readTree(dir.resolve("lora/adapter_config.json").toFile());
        List<String> targets = new ArrayList<>();
        peft.get("target_modules").forEach(t -> targets.add(t.asText()));
        List<Parameter> params = Lora.parameters(Lora.apply(decoder, new LoraConfig(peft.get("r").asInt(), peft.get("lora_alpha").asDouble(), 0, targets), 0));
        AdapterStore.load(dir.resolve("lora"), params);
        return params;
    }

    /**
     * The inverse frequencies of llama3-rope's rope_scaling against PyTorch's
     * (_compute_llama3_parameters in float64), and the case exercises all three bands: some
     * frequencies kept, some divided by the factor, some interpolated between.
     */
    @Test
    void llama3RopeFrequenciesMatchPyTorchInEveryBand() throws Exception {
        Path dir = caseDir("llama3-rope");
        LlamaConfig c = LlamaConfig.read(dir.resolve("config.json"));
        double[] ours = Rope.inverseFrequencies(c.headDim(), c.ropeTheta(), c.ropeScaling()), plain = Rope.inverseFrequencies(c.headDim(), c.ropeTheta(), null);
        double[] expected;
        try (SafetensorsFile ref = Safetensors.open(dir.resolve("reference.safetensors"))) {
            expected = ref.read("rope.inv_freq").toDoubleVector();
        }
        assertEquals(expected.length, ours.length);
        int kept = 0, slowed = 0, between = 0;
        for (int i = 0; i < ours.length; i++) {
            assertEquals(expected[i], ours[i], 1e-15 * expected[i], "inv_freq[" + i + "]");
            double factor = c.ropeScaling().factor();
            if (expected[i] == plain[i]) kept++;
            else if (Math.abs(expected[i] - plain[i] / factor) <= 1e-15 * expected[i]) slowed++;
            else if (expected[i] < plain[i] && expected[i] > plain[i] / factor) between++;
        }
        assertTrue(kept > 0 && slowed > 0 && between > 0, "bands: kept " + kept + ", slowed " + slowed + ", interpolated " + between);
        assertEquals(ours.length, kept + slowed + between);
    }

    /**
     * merge on Qwen2: qwen2-bias's LoRA folded into its weights. Every bias tensor is written again
     * bit for bit, every adapted weight changes, and the merged checkpoint alone, loaded without any
     * adapter, gives the logits PyTorch computed for the base with that LoRA.
     */
    @Test
    void mergedQwen2CheckpointKeepsItsBiasesAndGivesPyTorchsLoraLogits(@TempDir Path out) throws Exception {
        Path dir = caseDir("qwen2-bias");
        LlamaDecoder adapted = LlamaCheckpoint.load(dir, DataType.DOUBLE);
        applyLora(dir, adapted);
        MergedCheckpoint.Written written = MergedCheckpoint.write(dir, adapted, out.resolve("merged"));
        assertEquals(14, written.mergedTensors().size(), written.toString());
        int biases = 0;
        try (SafetensorsFile before = Safetensors.open(dir.resolve("model.safetensors"));
             SafetensorsFile after = Safetensors.open(out.resolve("merged/model.safetensors"))) {
            for (SafetensorsFile.TensorInfo t : before.tensors()) {
                boolean same = before.read(t.name()).equals(after.read(t.name()));
                if (t.name().endsWith(".bias")) biases++;
                if (written.mergedTensors().contains(t.name())) assertTrue(!same, t.name() + " folded");
                else assertTrue(same, t.name() + " unchanged");
            }
        }
        assertEquals(2 * 3, biases, "q, k, v biases of both layers");
        LlamaDecoder merged = LlamaCheckpoint.load(out.resolve("merged"), DataType.DOUBLE);
        try (SafetensorsFile ref = Safetensors.open(dir.resolve("reference.safetensors"))) {
            double error = relativeError(merged.forward(referenceBatch(ref)), ref.read("logits"));
            assertTrue(error < 1e-6, "merged vs PyTorch's base + LoRA: relative error " + error);
        }
    }

    @ParameterizedTest(name = "{0} in {1}")
    @CsvSource({
        "gqa-f32, DOUBLE, 1e-9", "tied-bf16, DOUBLE, 1e-9", "sharded-f16, DOUBLE, 1e-9",
        "llama3-rope, DOUBLE, 1e-9", "qwen2-bias, DOUBLE, 1e-9", "smollm2-shape, DOUBLE, 1e-9",
        "gqa-f32, FLOAT, 1e-4", "tied-bf16, FLOAT, 1e-4", "sharded-f16, FLOAT, 1e-4",
        "llama3-rope, FLOAT, 1e-4", "qwen2-bias, FLOAT, 1e-4", "smollm2-shape, FLOAT, 1e-4"})
    void logitsLossLoraGradientsAndAdamWStepsMatchPyTorch(String name, DataType dtype, double tolerance) throws Exception {
        Path dir = caseDir(name);
        LlamaDecoder decoder = LlamaCheckpoint.load(dir, dtype);
        JsonNode peft = JSON.readTree(dir.resolve("lora/adapter_config.json").toFile());
        List<String> targets = new ArrayList<>();
        peft.get("target_modules").forEach(t -> targets.add(t.asText()));
        List<LoraLinear> adapters = Lora.apply(decoder, new LoraConfig(peft.get("r").asInt(), peft.get("lora_alpha").asDouble(), 0, targets), 0);
        List<Parameter> params = Lora.parameters(adapters);
        assertEquals(2 * 7 * decoder.config().layers(), params.size());
        AdapterStore.load(dir.resolve("lora"), params);

        try (SafetensorsFile ref = Safetensors.open(dir.resolve("reference.safetensors"))) {
            INDArray idsRef = ref.read("input_ids"), maskRef = ref.read("attention_mask"), lossMaskRef = ref.read("loss_mask");
            int B = (int) idsRef.size(0), T = (int) idsRef.size(1), N = B * T;
            int[] ids = new int[N];
            float[] mask = new float[N], lossMask = new float[N];
            for (int i = 0; i < N; i++) {
                ids[i] = idsRef.getInt(i / T, i % T);
                mask[i] = maskRef.getFloat(i / T, i % T);
                lossMask[i] = lossMaskRef.getFloat(i / T, i % T);
            }
            DecoderBatch batch = new DecoderBatch(B, T, ids, mask);
            INDArray logits = decoder.forward(batch);
            double logitsError = relativeError(logits, ref.read("logits"));
            assertTrue(logitsError < tolerance, name + " logits: relative error " + logitsError);

            double loss = NextTokenLoss.forwardBackward(logits, batch, lossMask, logits);
            double expectedLoss = ref.read("loss").getDouble(0);
            assertEquals(expectedLoss, loss, tolerance * Math.abs(expectedLoss), name + " loss");

            decoder.backward(logits);
            double worst = 0;
            for (Parameter p : params) {
                String key = "grad.base_model.model." + p.name() + ".weight";
                worst = Math.max(worst, relativeError(p.grad(), ref.read(key)));
                assertTrue(worst < tolerance, name + " " + key + ": relative error " + worst);
            }

            AdamW adamw = AdamW.withDefaults(params, 0.01);
            INDArray expectedLosses = ref.read("adamw_losses");
            for (int step = 0; step < expectedLosses.length(); step++) {
                adamw.step(0.01);
                for (Parameter p : params) p.zeroGrad();
                INDArray stepLogits = decoder.forward(batch);
                double stepLoss = NextTokenLoss.forwardBackward(stepLogits, batch, lossMask, stepLogits);
                decoder.backward(stepLogits);
                double expected = expectedLosses.getDouble(step);
                assertEquals(expected, stepLoss, tolerance * Math.abs(expected), name + " loss after AdamW step " + (step + 1));
            }
        }
    }
}
