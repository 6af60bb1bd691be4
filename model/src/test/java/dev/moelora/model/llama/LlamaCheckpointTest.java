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

    /** A valid checkpoint (config + model.safetensors) after {@code edit} changed its tensors. */
    Map<String, INDArray> writeCheckpoint(Consumer<Map<String, INDArray>> edit) throws IOException {
        Path config = writeConfig(c -> {});
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
            new Case(m -> m.put("rope_scaling", Map.of("type", "linear", "factor", 2.0)), "rope_scaling", "only plain RoPE"),
            new Case(m -> m.put("hidden_act", "gelu"), "hidden_act", "only \"silu\""),
            new Case(m -> m.put("architectures", List.of("MistralForCausalLM")), "architectures", "LlamaForCausalLM"),
            new Case(m -> { m.remove("architectures"); m.put("model_type", "gpt2"); }, "architectures", "model_type"),
            new Case(m -> m.put("attention_bias", true), "attention_bias", "not implemented"),
            new Case(m -> m.put("head_dim", 8), "head_dim", "only hidden_size / num_attention_heads = 4"),
            new Case(m -> m.put("num_key_value_heads", 3), "config.json", "not a multiple of num_key_value_heads 3"));
        for (Case c : cases) {
            Path f = writeConfig(c.edit());
            assertMentions(assertThrows(IOException.class, () -> LlamaConfig.read(f), c.field()), f.toString(), c.field(), c.problem());
        }
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
        assertMentions(loadFails(), "model.safetensors", "unexpected tensor 'model.layers.0.self_attn.q_proj.bias'");
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
