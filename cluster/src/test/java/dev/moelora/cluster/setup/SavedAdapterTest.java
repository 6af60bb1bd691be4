package dev.moelora.cluster.setup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.llama.DecoderBatch;
import dev.moelora.model.llama.LlamaCheckpoint;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import dev.moelora.model.train.AdapterStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Saved adapter directories put onto the tiny golden checkpoint: each family's committed adapter
 * (model/src/test/resources/llama/gqa-f32/{lora,tied-lora-tl6,moelora}, written by llama_golden.py
 * in our layout) gives the logits PyTorch computes in float64 from the same files, within 1e-4 of
 * the largest reference value in float32; and every kind of malformed directory is refused with a
 * message naming the file and the field or tensor.
 */
class SavedAdapterTest {
    static final Path GOLDEN = Path.of("../model/src/test/resources/llama/gqa-f32");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** The reference batch (2 x 7, the second row right-padded) and each adapter's logits. */
    static Map<String, INDArray> reference() throws IOException {
        Map<String, INDArray> out = new LinkedHashMap<>();
        try (SafetensorsFile f = Safetensors.open(GOLDEN.resolve("adapter-reference.safetensors"))) {
            for (SafetensorsFile.TensorInfo t : f.tensors()) out.put(t.name(), f.read(t.name()));
        }
        return out;
    }

    static DecoderBatch referenceBatch(Map<String, INDArray> ref) {
        INDArray ids = ref.get("input_ids"), mask = ref.get("attention_mask");
        int B = (int) ids.size(0), T = (int) ids.size(1);
        int[] id = new int[B * T];
        float[] m = new float[B * T];
        for (int i = 0; i < B * T; i++) {
            id[i] = ids.getInt(i / T, i % T);
            m[i] = mask.getFloat(i / T, i % T);
        }
        return new DecoderBatch(B, T, id, m);
    }

    /** max |ours - reference| / max |reference|. */
    static double relativeError(INDArray ours, INDArray reference) {
        INDArray r = reference.castTo(DataType.DOUBLE), o = ours.castTo(DataType.DOUBLE).reshape(r.shape());
        return o.sub(r).amaxNumber().doubleValue() / r.amaxNumber().doubleValue();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"lora, lora", "tied-lora-tl6, tied-lora", "moelora, moelora"})
    void everyFamilysSavedAdapterGivesThePyTorchLogitsOfItsFiles(String adapter, String family) throws Exception {
        Map<String, INDArray> ref = reference();
        LlamaDecoder decoder = LlamaCheckpoint.load(GOLDEN, DataType.FLOAT);
        INDArray base = decoder.forward(referenceBatch(ref)).dup();
        SavedAdapter.Loaded loaded = SavedAdapter.load(GOLDEN.resolve(adapter), decoder);
        assertEquals(family, loaded.family());
        INDArray logits = decoder.forward(referenceBatch(ref));
        double error = relativeError(logits, ref.get("logits." + adapter));
        assertTrue(error < 1e-4, adapter + ": relative error " + error);
        assertTrue(relativeError(base, ref.get("logits.base")) < 1e-4, "the base model alone");
        assertTrue(relativeError(logits, ref.get("logits.base")) > 0.05, adapter + " changes the logits (else the test shows nothing)");
    }

    /** A copy of a committed adapter directory to break. */
    private Path copy(String adapter) throws IOException {
        Path to = Files.createDirectories(dir.resolve(adapter));
        try (Stream<Path> s = Files.list(GOLDEN.resolve(adapter))) {
            for (Path p : s.toList()) Files.copy(p, to.resolve(p.getFileName()));
        }
        return to;
    }

    private ObjectNode config(Path adapter) throws IOException {
        return (ObjectNode) JSON.readTree(adapter.resolve(AdapterStore.CONFIG).toFile());
    }

    private void write(Path adapter, ObjectNode config) throws IOException {
        Files.writeString(adapter.resolve(AdapterStore.CONFIG), config.toString());
    }

    private static IOException refused(Path adapter) throws IOException {
        LlamaDecoder decoder = LlamaCheckpoint.load(GOLDEN, DataType.FLOAT);
        return assertThrows(IOException.class, () -> SavedAdapter.load(adapter, decoder));
    }

    private static void assertNames(IOException e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' in: " + e.getMessage());
    }

    @Test
    void missingFilesAreNamed() throws Exception {
        assertNames(refused(dir.resolve("nowhere")), dir.resolve("nowhere").toString(), "not a directory");
        Path a = copy("lora");
        Files.delete(a.resolve(AdapterStore.ADAPTER));
        assertNames(refused(a), a.toString(), "no adapter_model.safetensors");
        Files.copy(GOLDEN.resolve("lora").resolve(AdapterStore.ADAPTER), a.resolve("adapter.safetensors"));
        assertNames(refused(a), "adapter.safetensors", "rename the file");
        Files.delete(a.resolve(AdapterStore.CONFIG));
        assertNames(refused(a), a.toString(), "no adapter_config.json");
        Files.writeString(a.resolve(AdapterStore.CONFIG), "{\"peft_type\": \"LORA\", \"r\": ");
        assertNames(refused(a), a.resolve(AdapterStore.CONFIG).toString(), "not valid JSON");
    }

    @Test
    void unknownFamiliesAndMissingOrMistypedFieldsAreNamed() throws Exception {
        Path a = copy("tied-lora-tl6");
        Path file = a.resolve(AdapterStore.CONFIG);
        ObjectNode good = config(a);
        write(a, good.deepCopy().put("moelora_type", "SPARSE_LORA"));
        assertNames(refused(a), file.toString(), "field 'moelora_type'", "unknown adapter family 'SPARSE_LORA'");
        ObjectNode noType = good.deepCopy();
        noType.remove("moelora_type");
        write(a, noType);
        assertNames(refused(a), file.toString(), "neither 'peft_type'");
        write(a, good.deepCopy().put("peft_type", "LORA"));
        assertNames(refused(a), file.toString(), "'peft_type' and 'moelora_type' together");
        ObjectNode noRank = good.deepCopy();
        noRank.remove("r");
        write(a, noRank);
        assertNames(refused(a), file.toString(), "field 'r' is missing");
        write(a, good.deepCopy().put("r", "two"));
        assertNames(refused(a), file.toString(), "field 'r': expected an integer");
        write(a, good.deepCopy().put("preset", "tl9"));
        assertNames(refused(a), file.toString(), "adapter.preset must be one of");
        write(a, good.deepCopy().put("rank_multiplier", 2));
        assertNames(refused(a), file.toString(), "field 'rank_multiplier' is not one of TIED_LORA's");
        ObjectNode elsewhere = good.deepCopy();
        elsewhere.putArray("target_modules").add("c_attn");
        write(a, elsewhere);
        assertNames(refused(a), file.toString(), "match no module");
        Path p = copy("lora");
        write(p, config(p).put("peft_type", "IA3"));
        assertNames(refused(p), "field 'peft_type': PEFT method 'IA3' is not implemented");
    }

    @ParameterizedTest(name = "{0} = {1}")
    @CsvSource(delimiter = ';', value = {
        "use_dora; true; DoRA",
        "use_rslora; true; rank-stabilised scaling",
        "bias; \"all\"; only bias = \"none\"",
        "fan_in_fan_out; true; transposed",
        "rank_pattern; {\"q_proj\": 4}; per-module ranks",
        "alpha_pattern; {\"q_proj\": 4}; per-module alphas",
        "modules_to_save; [\"lm_head\"]; fully trained modules",
        "layers_to_transform; [0]; some layers",
        "init_lora_weights; \"pissa\"; rewrites the base weights",
        "lora_bias; true; a PEFT option moelora does not implement",
        "some_future_option; {\"on\": 1}; a PEFT option moelora does not implement"})
    void peftOptionsThatChangeTheMathAreRefusedByName(String field, String json, String why) throws Exception {
        Path a = copy("lora");
        write(a, config(a).set(field, JSON.readTree(json)));
        assertNames(refused(a), a.resolve(AdapterStore.CONFIG).toString(), "field '" + field + "'", why);
    }

    @Test
    void peftOptionsThatLeaveTheMathAloneAreAccepted() throws Exception {
        Path a = copy("lora");
        ObjectNode c = config(a);
        c.put("bias", "none").put("use_dora", false).put("use_rslora", false).put("fan_in_fan_out", false).put("init_lora_weights", "gaussian")
                .put("peft_version", "0.21.0").put("task_type", "CAUSAL_LM").put("qalora_group_size", 16).putNull("layers_to_transform");
        c.putObject("rank_pattern");
        c.putObject("alpha_pattern");
        c.putObject("loftq_config");
        write(a, c);
        LlamaDecoder decoder = LlamaCheckpoint.load(GOLDEN, DataType.FLOAT);
        assertEquals("lora", SavedAdapter.load(a, decoder).family());
    }

    @Test
    void targetModulesAsARegularExpressionOrAllLinearSelectTheSameModules() throws Exception {
        Map<String, INDArray> ref = reference();
        for (String targets : new String[] {".*\\.(q|k|v|o|gate|up|down)_proj", "all-linear"}) {
            Path a = copy("lora");
            write(a, config(a).put("target_modules", targets));
            LlamaDecoder decoder = LlamaCheckpoint.load(GOLDEN, DataType.FLOAT);
            SavedAdapter.load(a, decoder);
            double error = relativeError(decoder.forward(referenceBatch(ref)), ref.get("logits.lora"));
            assertTrue(error < 1e-4, targets + ": relative error " + error);
            Files.walk(a).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
        Path a = copy("lora");
        write(a, config(a).put("target_modules", ".*\\.(q|v)_proj"));
        assertNames(refused(a), "tensor 'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight' belongs to no adapted module");
    }

    @Test
    void tensorsMissingMisshapenOrLeftOverAreNamedWithTheirShapes() throws Exception {
        Path a = copy("moelora");
        Path tensors = a.resolve(AdapterStore.ADAPTER);
        Map<String, INDArray> all = new LinkedHashMap<>();
        try (SafetensorsFile f = Safetensors.open(tensors)) {
            for (SafetensorsFile.TensorInfo t : f.tensors()) all.put(t.name(), f.read(t.name()));
        }
        String gate = "model.layers.1.self_attn.v_proj.moe_gate";
        Map<String, INDArray> broken = new LinkedHashMap<>(all);
        broken.put(gate, Nd4j.zeros(DataType.FLOAT, 4, 31));
        Safetensors.write(tensors, broken, Map.of());
        assertNames(refused(a), tensors.toString(), "tensor '" + gate + "' has shape [4, 31]", "expects [4, 32]");

        broken = new LinkedHashMap<>(all);
        broken.remove("model.layers.0.mlp.down_proj.moe_B.3");
        Safetensors.write(tensors, broken, Map.of());
        assertNames(refused(a), tensors.toString(), "no tensor 'model.layers.0.mlp.down_proj.moe_B.3' [32, 2]");

        broken = new LinkedHashMap<>(all);
        broken.put("model.layers.0.self_attn.q_proj.moe_A.4", Nd4j.zeros(DataType.FLOAT, 2, 32));
        Safetensors.write(tensors, broken, Map.of());
        assertNames(refused(a), tensors.toString(), "tensor 'model.layers.0.self_attn.q_proj.moe_A.4' belongs to no adapted module");

        write(a, config(a).put("experts", 3));
        Safetensors.write(tensors, all, Map.of());
        assertNames(refused(a), tensors.toString(), "tensor 'model.layers.0.self_attn.q_proj.moe_gate' has shape [4, 32]", "expects [3, 32]");
    }
}
