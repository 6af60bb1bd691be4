package dev.moelora.model.llama;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Shape of a LLaMA-family decoder, read from a Hugging Face {@code config.json}
 * ({@code LlamaForCausalLM}). Only what this decoder computes is accepted: SiLU MLP, plain RoPE,
 * no biases, head dimension C / H. Anything else (rope_scaling, attention_bias, another
 * architecture) is refused with an error naming the file and the field, never silently run as
 * something it is not.
 *
 * @param vocabSize         V
 * @param hidden            C
 * @param intermediate      F, the SwiGLU width
 * @param layers            L
 * @param heads             H query heads (C must divide by H; D = C / H must be even for RoPE)
 * @param kvHeads           KV key/value heads (H must divide by KV; KV < H is grouped-query attention)
 * @param rmsNormEps        RMSNorm epsilon
 * @param ropeTheta         RoPE base
 * @param tieWordEmbeddings lm_head shares the token embedding matrix
 * @param maxPositions      longest sequence the model was trained for
 * @param bosTokenId        beginning-of-sequence id, -1 when the config names none
 * @param eosTokenIds       end-of-sequence ids (one or several, possibly none)
 */
public record LlamaConfig(int vocabSize, int hidden, int intermediate, int layers, int heads, int kvHeads,
                          double rmsNormEps, double ropeTheta, boolean tieWordEmbeddings, int maxPositions,
                          int bosTokenId, List<Integer> eosTokenIds) {
    public static final String ARCHITECTURE = "LlamaForCausalLM";
    private static final ObjectMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    public LlamaConfig {
        for (int n : new int[] {vocabSize, hidden, intermediate, layers, heads, kvHeads, maxPositions}) {
            if (n < 1) throw new IllegalArgumentException("every size must be >= 1: " + describe(vocabSize, hidden, intermediate, layers, heads, kvHeads));
        }
        if (hidden % heads != 0) throw new IllegalArgumentException("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        if ((hidden / heads) % 2 != 0) throw new IllegalArgumentException("head dimension " + hidden / heads + " is odd; RoPE rotates pairs");
        if (heads % kvHeads != 0) throw new IllegalArgumentException("num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        if (!(rmsNormEps > 0)) throw new IllegalArgumentException("rms_norm_eps must be > 0, got " + rmsNormEps);
        if (!(ropeTheta > 0)) throw new IllegalArgumentException("rope_theta must be > 0, got " + ropeTheta);
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    private static String describe(int v, int c, int f, int l, int h, int kv) {
        return "V " + v + ", C " + c + ", F " + f + ", L " + l + ", H " + h + ", KV " + kv;
    }

    /** D, the width of one head. */
    public int headDim() {
        return hidden / heads;
    }

    /**
     * Every tensor a checkpoint of this shape holds, Hugging Face names and (out, in) layouts, in
     * forward order. {@code lm_head.weight} only when the embeddings are not tied.
     */
    public Map<String, long[]> weightShapes() {
        long C = hidden, F = intermediate, V = vocabSize, HD = (long) heads * headDim(), KVD = (long) kvHeads * headDim();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new long[] {V, C});
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            shapes.put(p + "input_layernorm.weight", new long[] {C});
            shapes.put(p + "self_attn.q_proj.weight", new long[] {HD, C});
            shapes.put(p + "self_attn.k_proj.weight", new long[] {KVD, C});
            shapes.put(p + "self_attn.v_proj.weight", new long[] {KVD, C});
            shapes.put(p + "self_attn.o_proj.weight", new long[] {C, HD});
            shapes.put(p + "post_attention_layernorm.weight", new long[] {C});
            shapes.put(p + "mlp.gate_proj.weight", new long[] {F, C});
            shapes.put(p + "mlp.up_proj.weight", new long[] {F, C});
            shapes.put(p + "mlp.down_proj.weight", new long[] {C, F});
        }
        shapes.put("model.norm.weight", new long[] {C});
        if (!tieWordEmbeddings) shapes.put("lm_head.weight", new long[] {V, C});
        return shapes;
    }

    /**
     * Reads a Hugging Face {@code config.json}. Required: hidden_size, intermediate_size,
     * num_hidden_layers, num_attention_heads, vocab_size, rms_norm_eps, max_position_embeddings,
     * and architectures naming LlamaForCausalLM (or, without architectures, model_type "llama").
     * Defaults as Hugging Face's LlamaConfig: num_key_value_heads = num_attention_heads,
     * rope_theta 10000, tie_word_embeddings false, hidden_act "silu".
     *
     * @throws IOException naming the file and the field for a missing file, bad JSON, a missing or
     *     ill-typed field, or a feature this decoder does not implement
     */
    public static LlamaConfig read(Path file) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": no such file (a checkpoint directory needs a Hugging Face config.json)", e);
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new IOException(file + ": expected a JSON object, found " + brief(root));
        Fields f = new Fields(file, root);

        JsonNode architectures = root.get("architectures");
        if (architectures != null && !architectures.isNull()) {
            if (!architectures.isArray() || architectures.size() == 0 || !architectures.get(0).isTextual()) {
                throw f.error("architectures", "expected a list of class names, found " + brief(architectures));
            }
            if (!ARCHITECTURE.equals(architectures.get(0).textValue())) {
                throw f.error("architectures", "this decoder implements " + ARCHITECTURE + ", not " + brief(architectures));
            }
        } else if (!"llama".equals(f.text("model_type", null))) {
            throw f.error("architectures", "missing, and model_type is not \"llama\"");
        }
        String act = f.text("hidden_act", "silu");
        if (!act.equals("silu")) throw f.error("hidden_act", "only \"silu\" (SwiGLU) is implemented, found \"" + act + "\"");
        JsonNode scaling = root.get("rope_scaling");
        if (scaling != null && !scaling.isNull()) {
            throw f.error("rope_scaling", "only plain RoPE (rope_scaling null) is implemented, found " + brief(scaling));
        }
        for (String bias : new String[] {"attention_bias", "mlp_bias"}) {
            if (f.bool(bias, false)) throw f.error(bias, "biases in the projections are not implemented");
        }
        int hidden = f.integer("hidden_size", null);
        int heads = f.integer("num_attention_heads", null);
        JsonNode headDim = root.get("head_dim");
        if (headDim != null && !headDim.isNull() && !(headDim.isIntegralNumber() && heads > 0 && headDim.asLong() * heads == hidden)) {
            throw f.error("head_dim", "only hidden_size / num_attention_heads = " + (heads > 0 ? hidden / heads : "?")
                    + " is implemented, found " + brief(headDim));
        }
        try {
            return new LlamaConfig(f.integer("vocab_size", null), hidden, f.integer("intermediate_size", null),
                    f.integer("num_hidden_layers", null), heads, f.integer("num_key_value_heads", heads),
                    f.number("rms_norm_eps", null), f.number("rope_theta", 10000.0), f.bool("tie_word_embeddings", false),
                    f.integer("max_position_embeddings", null), f.integer("bos_token_id", -1), f.ids("eos_token_id"));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /** Typed access to the fields of one config file; every failure names the file and the field. */
    private record Fields(Path file, JsonNode root) {
        IOException error(String field, String problem) {
            return new IOException(file + ": field '" + field + "': " + problem);
        }

        /** The field, or null when it is absent or JSON null and has a default; an error when required. */
        private JsonNode get(String field, Object fallback) throws IOException {
            JsonNode v = root.get(field);
            if ((v == null || v.isNull()) && fallback == null) throw error(field, "missing");
            return v == null || v.isNull() ? null : v;
        }

        int integer(String field, Integer fallback) throws IOException {
            JsonNode v = get(field, fallback);
            if (v == null) return fallback;
            if (!v.isIntegralNumber() || !v.canConvertToInt()) throw error(field, "expected an integer, found " + brief(v));
            return v.intValue();
        }

        double number(String field, Double fallback) throws IOException {
            JsonNode v = get(field, fallback);
            if (v == null) return fallback;
            if (!v.isNumber()) throw error(field, "expected a number, found " + brief(v));
            return v.doubleValue();
        }

        boolean bool(String field, boolean fallback) throws IOException {
            JsonNode v = get(field, fallback);
            if (v == null) return fallback;
            if (!v.isBoolean()) throw error(field, "expected true or false, found " + brief(v));
            return v.booleanValue();
        }

        String text(String field, String fallback) throws IOException {
            JsonNode v = root.get(field);
            if (v == null || v.isNull()) return fallback;
            if (!v.isTextual()) throw error(field, "expected a string, found " + brief(v));
            return v.textValue();
        }

        /** An integer, a list of integers, or absent (none). */
        List<Integer> ids(String field) throws IOException {
            JsonNode v = root.get(field);
            List<Integer> out = new ArrayList<>();
            if (v == null || v.isNull()) return out;
            for (JsonNode id : v.isArray() ? v : List.of(v)) {
                if (!id.isIntegralNumber() || !id.canConvertToInt()) throw error(field, "expected an integer or a list of integers, found " + brief(v));
                out.add(id.intValue());
            }
            return out;
        }
    }

    /** A JSON value for an error message, cut short. */
    private static String brief(JsonNode node) {
        String text = String.valueOf(node);
        return text.length() <= 80 ? text : text.substring(0, 77) + "...";
    }
}
