package dev.moelora.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.model.safetensors.Safetensors;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Reading config.json and checkpoint directories, well-formed and malformed. */
class LlamaCheckpointTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir Path dir;

    /** V 16, C 8, F 12, L 2, H 2, KV 1, untied. */
    static Map<String, Object> configJson() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("architectures", List.of("LlamaForCausalLM"));
        c.put("model_type", "llama");
        c.put("hidden_size", 8);
        c.put("intermediate_size", 12);
        c.put("num_hidden_layers", 2);
        c.put("num_attention_heads", 2);
        c.put("num_key_value_heads", 1);
        c.put("vocab_size", 16);
        c.put("max_position_embeddings", 32);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", 10000.0);
        c.put("rope_scaling", null);
        c.put("hidden_act", "silu");
        c.put("tie_word_embeddings", false);
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        return c;
    }

    Path writeConfig(Consumer<Map<String, Object>> edit) throws IOException {
        Map<String, Object> c = configJson();
        edit.accept(c);
        Files.createDirectories(dir);
        return Files.writeString(dir.resolve("config.json"), JSON.writeValueAsString(c));
    }

    /** Qwen2's config.json fields on the same shapes: biases on q, k, v; sliding_window given but off. */
    static void qwen2(Map<String, Object> c) {
        c.put("architectures", List.of("Qwen2ForCausalLM"));
        c.put("model_type", "qwen2");
        c.put("use_sliding_window", false);
        c.put("sliding_window", 4);
        c.put("max_window_layers", 1);
    }

    /** Llama 3.1's rope_scaling. */
    static Map<String, Object> llama3Scaling() {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("rope_type", "llama3");
        s.put("factor", 8.0);
        s.put("low_freq_factor", 1.0);
        s.put("high_freq_factor", 4.0);
        s.put("original_max_position_embeddings", 8192);
        return s;
    }

    /** A valid checkpoint (config + model.safetensors) after {@code edit} changed its tensors. */
    Map<String, INDArray> writeCheckpoint(Consumer<Map<String, INDArray>> edit) throws IOException {
        return writeCheckpoint(c -> {}, edit);
    }

    /** A valid checkpoint of the config {@code config} made, after {@code edit} changed its tensors. */
    Map<String, INDArray> writeCheckpoint(Consumer<Map<String, Object>> configEdit, Consumer<Map<String, INDArray>> edit) throws IOException {
        Path config = writeConfig(configEdit);
        Map<String, INDArray> w = LlamaDecoder.randomWeights(LlamaConfig.read(config), DataType.FLOAT, 3);
        edit.accept(w);
        Safetensors.write(dir.resolve("model.safetensors"), w, Map.of("format", "pt"));
        return w;
    }

    IOException loadFails() {
        return assertThrows(IOException.class, () -> LlamaCheckpoint.load(dir, DataType.FLOAT));
    }

    static void assertMentions(Exception e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
    }

    // ---- config.json ----

    @Test
    void configReadsHuggingFaceFieldsAndDefaults() throws IOException {
        LlamaConfig c = LlamaConfig.read(writeConfig(m -> {
            m.remove("num_key_value_heads");
            m.remove("rope_theta");
            m.remove("tie_word_embeddings");
            m.remove("bos_token_id");
            m.put("eos_token_id", List.of(2, 7));
        }));
        assertEquals(new LlamaConfig(16, 8, 12, 2, 2, 2, 1e-5, 10000, false, 32, -1, List.of(2, 7)), c);
        assertEquals(4, c.headDim());
    }

    @Test
    void configErrorsNameTheFileAndTheField() throws IOException {
        Path file = dir.resolve("config.json");
        assertMentions(assertThrows(IOException.class, () -> LlamaConfig.read(file)), file.toString(), "no such file");
        Files.writeString(file, "{\"hidden_size\": 8,");
        assertMentions(assertThrows(IOException.class, () -> LlamaConfig.read(file)), file.toString(), "not valid JSON");
        record Case(Consumer<Map<String, Object>> edit, String field, String problem) {}
        List<Case> cases = List.of(
            new Case(m -> m.remove("hidden_size"), "hidden_size", "missing"),
            new Case(m -> m.put("num_hidden_layers", "2"), "num_hidden_layers", "expected an integer"),
            new Case(m -> m.put("rms_norm_eps", "small"), "rms_norm_eps", "expected a number"),
            new Case(m -> m.put("tie_word_embeddings", 1), "tie_word_embeddings", "expected true or false"),
            new Case(m -> m.put("eos_token_id", List.of("</s>")), "eos_token_id", "expected an integer or a list"),
            new Case(m -> m.put("rope_scaling", Map.of("type", "linear", "factor", 2.0)), "rope_scaling.rope_type",
                    "\"linear\" is not implemented; expected \"default\" (plain RoPE) or \"llama3\""),
            new Case(m -> m.put("hidden_act", "gelu"), "hidden_act", "only \"silu\""),
            new Case(m -> m.put("architectures", List.of("MistralForCausalLM")), "architectures", "LlamaForCausalLM and Qwen2ForCausalLM, not"),
            new Case(m -> { m.remove("architectures"); m.put("model_type", "gpt2"); }, "architectures", "model_type is not \"llama\" or \"qwen2\""),
            new Case(m -> m.put("attention_bias", "yes"), "attention_bias", "expected true or false"),
            new Case(m -> m.put("head_dim", 8), "head_dim", "only hidden_size / num_attention_heads = 4"),
            new Case(m -> m.put("num_key_value_heads", 3), "config.json", "not a multiple of num_key_value_heads 3"));
        for (Case c : cases) {
            Path f = writeConfig(c.edit());
            assertMentions(assertThrows(IOException.class, () -> LlamaConfig.read(f), c.field()), f.toString(), c.field(), c.problem());
        }
    }

    @Test
    void malformedRopeScalingIsNamedFieldByField() throws IOException {
        record Case(Consumer<Map<String, Object>> rope, String field, String problem) {}
        List<Case> cases = List.of(
            new Case(r -> r.remove("factor"), "rope_scaling.factor", "missing"),
            new Case(r -> r.put("factor", "8"), "rope_scaling.factor", "expected a number, found \"8\""),
            new Case(r -> r.remove("low_freq_factor"), "rope_scaling.low_freq_factor", "missing"),
            new Case(r -> r.put("high_freq_factor", true), "rope_scaling.high_freq_factor", "expected a number"),
            new Case(r -> r.put("original_max_position_embeddings", 64.5), "rope_scaling.original_max_position_embeddings", "expected an integer"),
            new Case(r -> r.put("high_freq_factor", 1.0), "rope_scaling", "high_freq_factor must be > low_freq_factor 1.0, got 1.0"),
            new Case(r -> r.put("factor", 0), "rope_scaling", "factor must be > 0"),
            new Case(r -> r.put("rope_type", "yarn"), "rope_scaling.rope_type", "\"yarn\" is not implemented"),
            new Case(r -> { r.remove("rope_type"); r.put("type", "dynamic"); }, "rope_scaling.rope_type", "\"dynamic\" is not implemented"),
            new Case(r -> r.put("rope_type", 3), "rope_scaling.rope_type", "expected a string"),
            new Case(r -> r.remove("rope_type"), "rope_scaling.rope_type", "missing (and no legacy 'type')"),
            new Case(r -> r.put("partial_rotary_factor", 0.5), "rope_scaling.partial_rotary_factor", "only 1"));
        for (Case c : cases) {
            Map<String, Object> rope = llama3Scaling();
            c.rope().accept(rope);
            Path f = writeConfig(m -> m.put("rope_scaling", rope));
            assertMentions(assertThrows(IOException.class, () -> LlamaConfig.read(f), c.field()), f.toString(), "field '" + c.field() + "'", c.problem());
        }
        record Whole(Consumer<Map<String, Object>> edit, String field, String problem) {}
        List<Whole> wholes = List.of(
            new Whole(m -> m.put("rope_scaling", "llama3"), "rope_scaling", "expected an object, found \"llama3\""),
            new Whole(m -> { m.put("rope_scaling", llama3Scaling()); m.put("rope_parameters", llama3Scaling()); }, "rope_scaling",
                    "together with rope_parameters"),
            new Whole(m -> m.put("rope_parameters", Map.of("rope_type", "default", "rope_theta", 500000.0)), "rope_theta",
                    "10000.0 disagrees with rope_parameters.rope_theta 500000.0"),
            new Whole(m -> m.put("rope_parameters", Map.of("full_attention", Map.of("rope_type", "default"))), "rope_parameters", "per layer type"));
        for (Whole c : wholes) {
            Path f = writeConfig(c.edit());
            assertMentions(assertThrows(IOException.class, () -> LlamaConfig.read(f), c.field()), f.toString(), "field '" + c.field() + "'", c.problem());
        }
    }

    @Test
    void llama3RopeScalingReadsFromRopeScalingWithEitherKeyOrFromTransformers5RopeParameters() throws IOException {
        Rope.Llama3Scaling expected = new Rope.Llama3Scaling(8, 1, 4, 8192);
        LlamaConfig withRopeType = LlamaConfig.read(writeConfig(m -> m.put("rope_scaling", llama3Scaling())));
        assertEquals(expected, withRopeType.ropeScaling());
        assertEquals(10000.0, withRopeType.ropeTheta());
        Map<String, Object> legacy = llama3Scaling();
        legacy.put("type", legacy.remove("rope_type"));
        assertEquals(expected, LlamaConfig.read(writeConfig(m -> m.put("rope_scaling", legacy))).ropeScaling(), "legacy key 'type'");
        Map<String, Object> parameters = llama3Scaling();
        parameters.put("rope_theta", 500000.0);
        LlamaConfig v5 = LlamaConfig.read(writeConfig(m -> { m.remove("rope_theta"); m.remove("rope_scaling"); m.put("rope_parameters", parameters); }));
        assertEquals(expected, v5.ropeScaling());
        assertEquals(500000.0, v5.ropeTheta(), "rope_theta inside rope_parameters, as transformers 5 writes it");
        LlamaConfig plain = LlamaConfig.read(writeConfig(m -> m.put("rope_scaling", Map.of("rope_type", "default"))));
        assertEquals(null, plain.ropeScaling(), "rope_type default is plain RoPE");
        assertTrue(withRopeType.describe().contains("llama3 RoPE scaling x8 from 8192 positions"), withRopeType.describe());
    }

    @Test
    void qwen2AndLlamaBiasesAddBiasTensorsToTheExpectedCheckpoint() throws IOException {
        LlamaConfig qwen = LlamaConfig.read(writeConfig(LlamaCheckpointTest::qwen2));
        assertEquals(LlamaConfig.QWEN2, qwen.architecture());
        assertEquals(java.util.Set.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), qwen.biased());
        Map<String, long[]> shapes = qwen.weightShapes();
        assertEquals(List.of(8L), java.util.Arrays.stream(shapes.get("model.layers.1.self_attn.q_proj.bias")).boxed().toList());
        assertEquals(List.of(4L), java.util.Arrays.stream(shapes.get("model.layers.1.self_attn.v_proj.bias")).boxed().toList());
        assertEquals(2 * 3, shapes.keySet().stream().filter(n -> n.endsWith(".bias")).count(), shapes.keySet().toString());
        assertEquals("Qwen2ForCausalLM, 2 layers, hidden 8, 2/1 heads, vocabulary 16, 32 positions, q/k/v biases", qwen.describe());
        LlamaConfig byModelType = LlamaConfig.read(writeConfig(m -> { qwen2(m); m.remove("architectures"); }));
        assertEquals(qwen, byModelType, "model_type qwen2 without architectures");

        LlamaConfig attention = LlamaConfig.read(writeConfig(m -> m.put("attention_bias", true)));
        assertEquals(2 * 4, attention.weightShapes().keySet().stream().filter(n -> n.endsWith(".bias")).count());
        assertTrue(attention.weightShapes().containsKey("model.layers.0.self_attn.o_proj.bias"));
        LlamaConfig mlp = LlamaConfig.read(writeConfig(m -> m.put("mlp_bias", true)));
        assertEquals(List.of(8L), java.util.Arrays.stream(mlp.weightShapes().get("model.layers.0.mlp.down_proj.bias")).boxed().toList());
        assertEquals(2 * 3, mlp.weightShapes().keySet().stream().filter(n -> n.endsWith(".bias")).count());
    }

    @Test
    void qwen2FeaturesThisDecoderDoesNotComputeAreRefusedByName() throws IOException {
        record Case(Consumer<Map<String, Object>> edit, String field, String problem) {}
        List<Case> cases = List.of(
            new Case(m -> m.put("use_sliding_window", true), "use_sliding_window", "sliding-window attention is not implemented (full causal attention only); expected false"),
            new Case(m -> m.put("use_sliding_window", "no"), "use_sliding_window", "expected true or false"),
            new Case(m -> m.remove("num_key_value_heads"), "num_key_value_heads", "missing"),
            new Case(m -> m.put("layer_types", List.of("full_attention", "sliding_attention")), "layer_types",
                    "only \"full_attention\" layers are implemented, found \"sliding_attention\""));
        for (Case c : cases) {
            Path f = writeConfig(m -> { qwen2(m); c.edit().accept(m); });
            assertMentions(assertThrows(IOException.class, () -> LlamaConfig.read(f), c.field()), f.toString(), "field '" + c.field() + "'", c.problem());
        }
        LlamaConfig.read(writeConfig(m -> { qwen2(m); m.put("layer_types", List.of("full_attention", "full_attention")); }));
    }

    @Test
    void qwen2BiasTensorsMissingMisshapenOrWhereQwen2HasNoneAreNamed() throws IOException {
        writeCheckpoint(LlamaCheckpointTest::qwen2, w -> w.remove("model.layers.0.self_attn.q_proj.bias"));
        assertMentions(loadFails(), dir.toString(), "missing tensor 'model.layers.0.self_attn.q_proj.bias' [8]",
                "Qwen2ForCausalLM as " + dir.resolve("config.json") + " describes it adds a bias there");
        writeCheckpoint(LlamaCheckpointTest::qwen2, w -> w.put("model.layers.1.self_attn.k_proj.bias", Nd4j.zeros(DataType.FLOAT, 8)));
        assertMentions(loadFails(), "model.safetensors", "tensor 'model.layers.1.self_attn.k_proj.bias' has shape [8], expected [4]");
        writeCheckpoint(LlamaCheckpointTest::qwen2, w -> w.put("model.layers.0.self_attn.o_proj.bias", Nd4j.zeros(DataType.FLOAT, 8)));
        assertMentions(loadFails(), "model.safetensors", "unexpected tensor 'model.layers.0.self_attn.o_proj.bias'", "Qwen2ForCausalLM",
                "Qwen2 has biases on q_proj, k_proj and v_proj only");
        writeCheckpoint(LlamaCheckpointTest::qwen2, w -> w.put("model.layers.0.mlp.up_proj.bias", Nd4j.zeros(DataType.FLOAT, 12)));
        assertMentions(loadFails(), "unexpected tensor 'model.layers.0.mlp.up_proj.bias'");
        writeCheckpoint(m -> m.put("attention_bias", true), w -> w.put("model.layers.0.mlp.up_proj.bias", Nd4j.zeros(DataType.FLOAT, 12)));
        assertMentions(loadFails(), "unexpected tensor 'model.layers.0.mlp.up_proj.bias'", "LlamaForCausalLM", "(mlp_bias is false)");
        writeCheckpoint(LlamaCheckpointTest::qwen2, w -> {});
        assertEquals(LlamaConfig.QWEN2, LlamaCheckpoint.load(dir, DataType.FLOAT).config().architecture(), "the well-formed Qwen2 checkpoint loads");
    }

    // ---- weights ----

    @Test
    void singleFileAndShardedCheckpointsLoadTheSameWeights() throws IOException {
        Map<String, INDArray> w = writeCheckpoint(m -> m.put("model.layers.0.self_attn.rotary_emb.inv_freq", Nd4j.ones(DataType.FLOAT, 2)));
        LlamaDecoder single = LlamaCheckpoint.load(dir, DataType.DOUBLE);
        assertEquals(DataType.DOUBLE, single.dataType());
        DecoderBatch batch = new DecoderBatch(1, 3, new int[] {1, 4, 9}, new float[] {1, 1, 1});
        INDArray expected = new LlamaDecoder(single.config(), withoutInvFreq(w, DataType.DOUBLE)).forward(batch).dup();
        assertEquals(0.0, single.forward(batch).sub(expected).amaxNumber().doubleValue(), 0.0, "inv_freq skipped, values exact");

        Files.delete(dir.resolve("model.safetensors"));
        writeShards(withoutInvFreq(w, DataType.FLOAT), Map.of());
        assertEquals(0.0, LlamaCheckpoint.load(dir, DataType.DOUBLE).forward(batch).sub(expected).amaxNumber().doubleValue(), 0.0);
    }

    static Map<String, INDArray> withoutInvFreq(Map<String, INDArray> w, DataType dtype) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        w.forEach((k, v) -> { if (!k.endsWith("inv_freq")) out.put(k, v.castTo(dtype)); });
        return out;
    }

    /** Layer 0 and the embeddings in shard 1, the rest in shard 2; {@code indexEdits} overrides weight_map entries. */
    void writeShards(Map<String, INDArray> w, Map<String, String> indexEdits) throws IOException {
        Map<String, INDArray> first = new LinkedHashMap<>(), second = new LinkedHashMap<>();
        Map<String, String> weightMap = new LinkedHashMap<>();
        w.forEach((k, v) -> {
            boolean one = k.startsWith("model.embed_tokens") || k.startsWith("model.layers.0.");
            (one ? first : second).put(k, v);
            weightMap.put(k, one ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
        });
        Safetensors.write(dir.resolve("model-00001-of-00002.safetensors"), first, Map.of());
        Safetensors.write(dir.resolve("model-00002-of-00002.safetensors"), second, Map.of());
        weightMap.putAll(indexEdits);
        weightMap.values().removeIf(String::isEmpty);
        Files.writeString(dir.resolve(LlamaCheckpoint.INDEX), JSON.writeValueAsString(Map.of("metadata", Map.of(), "weight_map", weightMap)));
    }

    @Test
    void generationConfigsEndOfSequenceIdsOverrideConfigJsonsAsTransformersGenerateDoes() throws IOException {
        writeCheckpoint(w -> {});
        assertEquals(List.of(2), LlamaCheckpoint.load(dir, DataType.FLOAT).config().eosTokenIds(), "config.json's alone");
        Path generation = dir.resolve(LlamaCheckpoint.GENERATION_CONFIG);
        Files.writeString(generation, "{\"bos_token_id\": 1, \"eos_token_id\": [2, 7], \"do_sample\": true}");
        assertEquals(List.of(2, 7), LlamaCheckpoint.load(dir, DataType.FLOAT).config().eosTokenIds(), "generation_config.json's list");
        Files.writeString(generation, "{\"eos_token_id\": 9}");
        assertEquals(List.of(9), LlamaCheckpoint.load(dir, DataType.FLOAT).config().eosTokenIds(), "one id");
        Files.writeString(generation, "{\"temperature\": 0.6}");
        assertEquals(List.of(2), LlamaCheckpoint.load(dir, DataType.FLOAT).config().eosTokenIds(), "unset there: config.json's stay");
        Files.writeString(generation, "{\"eos_token_id\": \"</s>\"}");
        assertMentions(loadFails(), generation.toString(), "'eos_token_id'", "expected an integer or a list of integers");
        Files.writeString(generation, "{\"eos_token_id\": [2,");
        assertMentions(loadFails(), generation.toString(), "not valid JSON");
    }

    @Test
    void missingPiecesAreNamed() throws IOException {
        assertMentions(assertThrows(IOException.class, () -> LlamaCheckpoint.load(dir.resolve("nope"), DataType.FLOAT)), "nope", "not a directory");
        assertMentions(loadFails(), "config.json", "no such file");
        writeConfig(c -> {});
        Files.writeString(dir.resolve("pytorch_model.bin"), "");
        assertMentions(loadFails(), dir.toString(), "no model.safetensors and no model.safetensors.index.json", "pytorch_model.bin");
        Files.delete(dir.resolve("pytorch_model.bin"));

        writeCheckpoint(w -> w.remove("model.layers.1.mlp.up_proj.weight"));
        assertMentions(loadFails(), "missing tensor 'model.layers.1.mlp.up_proj.weight'", "[12, 8]");
        writeCheckpoint(w -> w.remove("lm_head.weight"));
        assertMentions(loadFails(), "missing tensor 'lm_head.weight'", "tie_word_embeddings is false");
    }

    @Test
    void wrongShapesAndUnexpectedTensorsAreRefused() throws IOException {
        writeCheckpoint(w -> w.put("model.layers.0.self_attn.k_proj.weight", Nd4j.zeros(DataType.FLOAT, 8, 8)));
        assertMentions(loadFails(), "model.safetensors", "'model.layers.0.self_attn.k_proj.weight' has shape [8, 8], expected [4, 8]");
        writeCheckpoint(w -> w.put("model.layers.0.self_attn.q_proj.bias", Nd4j.zeros(DataType.FLOAT, 8)));
        assertMentions(loadFails(), "model.safetensors", "unexpected tensor 'model.layers.0.self_attn.q_proj.bias'", "(attention_bias is false)");
        Map<String, INDArray> w = writeCheckpoint(m -> {});
        writeConfig(c -> c.put("tie_word_embeddings", true));
        assertMentions(loadFails(), "unexpected tensor 'lm_head.weight'", "tie_word_embeddings is true");
        w.remove("lm_head.weight");
        Safetensors.write(dir.resolve("model.safetensors"), w, Map.of());
        assertEquals(true, LlamaCheckpoint.load(dir, DataType.FLOAT).config().tieWordEmbeddings(), "tied: lm_head is the embeddings");
    }

    @Test
    void shardIndexInconsistenciesAreNamed() throws IOException {
        Map<String, INDArray> w = withoutInvFreq(writeCheckpoint(m -> {}), DataType.FLOAT);
        Files.delete(dir.resolve("model.safetensors"));
        writeShards(w, Map.of("model.norm.weight", "model-00003-of-00002.safetensors"));
        assertMentions(loadFails(), LlamaCheckpoint.INDEX, "model.norm.weight", "model-00003-of-00002.safetensors", "does not exist");
        writeShards(w, Map.of("model.norm.weight", ""));
        assertMentions(loadFails(), "model-00002-of-00002.safetensors", "holds tensor 'model.norm.weight'", "does not list");
        writeShards(w, Map.of("model.norm.weight", "model-00001-of-00002.safetensors"));
        assertMentions(loadFails(), "model-00002-of-00002.safetensors", "'model.norm.weight'", "puts in model-00001-of-00002.safetensors");
        writeShards(w, Map.of("model.extra.weight", "model-00001-of-00002.safetensors"));
        assertMentions(loadFails(), LlamaCheckpoint.INDEX, "lists tensor 'model.extra.weight'", "does not hold it");
        writeShards(w, Map.of("model.norm.weight", "../elsewhere.safetensors"));
        assertMentions(loadFails(), "not a .safetensors file in the checkpoint directory");
        Files.writeString(dir.resolve(LlamaCheckpoint.INDEX), "{\"weight_map\": [");
        assertMentions(loadFails(), LlamaCheckpoint.INDEX, "not valid JSON");
        Files.writeString(dir.resolve(LlamaCheckpoint.INDEX), "{\"metadata\": {}}");
        assertMentions(loadFails(), LlamaCheckpoint.INDEX, "'weight_map'");
    }

    @Test
    void aTruncatedWeightFileIsNamed() throws IOException {
        writeCheckpoint(m -> {});
        Path file = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(bytes, bytes.length - 100));
        assertMentions(loadFails(), file.toString());
    }
}
