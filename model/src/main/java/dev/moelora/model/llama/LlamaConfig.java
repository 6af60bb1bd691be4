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
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Shape of a LLaMA-family decoder, read from a Hugging Face {@code config.json}:
 * {@code LlamaForCausalLM} (Llama 1-3.x, TinyLlama, SmolLM2, ...) or {@code Qwen2ForCausalLM}
 * (Qwen2, Qwen2.5), which is the same decoder with biases on q_proj, k_proj and v_proj. Only what
 * this decoder computes is accepted: SiLU MLP, RoPE plain or rescaled as Llama 3.1 does
 * (rope_type "llama3"), full causal attention, head dimension C / H. Anything else (another
 * rope_type, sliding-window attention, another architecture) is refused with an error naming the
 * file and the field, never silently run as something it is not.
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
 * @param architecture      {@link #LLAMA} or {@link #QWEN2}, as the checkpoint names itself
 * @param ropeScaling       Llama 3.1's rescaled frequencies, or null for plain RoPE
 * @param biased            the projections ({@link #PROJECTIONS}) that add a bias: q, k, v for Qwen2;
 *                          those attention_bias and mlp_bias switch on for Llama; none by default
 */
public record LlamaConfig(int vocabSize, int hidden, int intermediate, int layers, int heads, int kvHeads,
                          double rmsNormEps, double ropeTheta, boolean tieWordEmbeddings, int maxPositions,
                          int bosTokenId, List<Integer> eosTokenIds, String architecture, Rope.Llama3Scaling ropeScaling,
                          Set<String> biased) {
    public static final String LLAMA = "LlamaForCausalLM", QWEN2 = "Qwen2ForCausalLM";
    /** The linear layers of a block, Hugging Face's names, in forward order. */
    public static final List<String> PROJECTIONS = List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");
    private static final Set<String> QKV = Set.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj");
    private static final Map<String, String> MODEL_TYPES = Map.of("llama", LLAMA, "qwen2", QWEN2);
    private static final ObjectMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    /** A plain LLaMA: no biases, plain RoPE. */
    public LlamaConfig(int vocabSize, int hidden, int intermediate, int layers, int heads, int kvHeads, double rmsNormEps, double ropeTheta,
                       boolean tieWordEmbeddings, int maxPositions, int bosTokenId, List<Integer> eosTokenIds) {
        this(vocabSize, hidden, intermediate, layers, heads, kvHeads, rmsNormEps, ropeTheta, tieWordEmbeddings, maxPositions, bosTokenId,
                eosTokenIds, LLAMA, null, Set.of());
    }

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
        if (!MODEL_TYPES.containsValue(architecture)) throw new IllegalArgumentException("architecture must be one of " + MODEL_TYPES.values() + ", got " + architecture);
        if (!PROJECTIONS.containsAll(biased)) throw new IllegalArgumentException("biased projections " + biased + " are not all among " + PROJECTIONS);
        biased = Set.copyOf(biased);
    }

    private static String describe(int v, int c, int f, int l, int h, int kv) {
        return "V " + v + ", C " + c + ", F " + f + ", L " + l + ", H " + h + ", KV " + kv;
    }

    /** D, the width of one head. */
    public int headDim() {
        return hidden / heads;
    }

    /**
     * One line for a run header: the architecture and what sets it apart, e.g.
     * "Qwen2ForCausalLM, 24 layers, hidden 896, 14/2 heads, vocabulary 151936, 32768 positions,
     * q/k/v biases, tied embeddings".
     */
    public String describe() {
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "%s, %d layers, hidden %d, %d/%d heads, vocabulary %d, %d positions",
                architecture, layers, hidden, heads, kvHeads, vocabSize, maxPositions));
        if (!biased.isEmpty()) {
            s.append(", ").append(String.join("/", PROJECTIONS.stream().filter(biased::contains)
                    .map(m -> m.substring(m.indexOf('.') + 1).replace("_proj", "")).toList())).append(" biases");
        }
        if (ropeScaling != null) {
            s.append(String.format(Locale.ROOT, ", llama3 RoPE scaling x%s from %d positions", trim(ropeScaling.factor()), ropeScaling.originalMaxPositions()));
        }
        if (tieWordEmbeddings) s.append(", tied embeddings");
        return s.toString();
    }

    private static String trim(double v) {
        return v == Math.rint(v) ? String.valueOf((long) v) : String.valueOf(v);
    }

    /**
     * Every tensor a checkpoint of this shape holds, Hugging Face names and (out, in) layouts, in
     * forward order: each projection's weight, then its bias (out) when it has one.
     * {@code lm_head.weight} only when the embeddings are not tied.
     */
    public Map<String, long[]> weightShapes() {
        long C = hidden, F = intermediate, V = vocabSize, HD = (long) heads * headDim(), KVD = (long) kvHeads * headDim();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new long[] {V, C});
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            shapes.put(p + "input_layernorm.weight", new long[] {C});
            for (String m : PROJECTIONS) {
                long[] outIn = switch (m) {
                    case "self_attn.q_proj" -> new long[] {HD, C};
                    case "self_attn.k_proj", "self_attn.v_proj" -> new long[] {KVD, C};
                    case "self_attn.o_proj" -> new long[] {C, HD};
                    case "mlp.down_proj" -> new long[] {C, F};
                    default -> new long[] {F, C};
                };
                if (m.equals("mlp.gate_proj")) shapes.put(p + "post_attention_layernorm.weight", new long[] {C});
                shapes.put(p + m + ".weight", outIn);
                if (biased.contains(m)) shapes.put(p + m + ".bias", new long[] {outIn[0]});
            }
        }
        shapes.put("model.norm.weight", new long[] {C});
        if (!tieWordEmbeddings) shapes.put("lm_head.weight", new long[] {V, C});
        return shapes;
    }

    /**
     * Reads a Hugging Face {@code config.json}. Required: hidden_size, intermediate_size,
     * num_hidden_layers, num_attention_heads, vocab_size, rms_norm_eps, max_position_embeddings,
     * and architectures naming LlamaForCausalLM or Qwen2ForCausalLM (or, without architectures,
     * model_type "llama" or "qwen2"); for Qwen2 also num_key_value_heads (Qwen2Config's default is
     * 32, not num_attention_heads). Defaults as Hugging Face's configs: num_key_value_heads =
     * num_attention_heads (Llama), rope_theta 10000, tie_word_embeddings false, hidden_act "silu",
     * attention_bias and mlp_bias false (Llama), use_sliding_window false (Qwen2; sliding_window is
     * then ignored, as transformers ignores it). RoPE is read from rope_scaling, or from
     * rope_parameters as transformers 5 saves it (rope_theta inside).
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
        Fields f = new Fields(file, root, "");

        String architecture = architecture(f, root);
        String act = f.text("hidden_act", "silu");
        if (!act.equals("silu")) throw f.error("hidden_act", "only \"silu\" (SwiGLU) is implemented, found \"" + act + "\"");
        Set<String> biased = new LinkedHashSet<>();
        if (architecture.equals(QWEN2)) {
            biased.addAll(QKV);
            if (f.bool("use_sliding_window", false)) {
                throw f.error("use_sliding_window", "sliding-window attention is not implemented (full causal attention only); expected false");
            }
        } else {
            if (f.bool("attention_bias", false)) biased.addAll(PROJECTIONS.subList(0, 4));
            if (f.bool("mlp_bias", false)) biased.addAll(PROJECTIONS.subList(4, 7));
        }
        JsonNode layerTypes = root.get("layer_types");
        if (layerTypes != null && !layerTypes.isNull()) {
            if (!layerTypes.isArray()) throw f.error("layer_types", "expected a list, found " + brief(layerTypes));
            for (JsonNode t : layerTypes) {
                if (!"full_attention".equals(t.textValue())) {
                    throw f.error("layer_types", "only \"full_attention\" layers are implemented, found " + brief(t));
                }
            }
        }
        int hidden = f.integer("hidden_size", null);
        int heads = f.integer("num_attention_heads", null);
        JsonNode headDim = root.get("head_dim");
        if (headDim != null && !headDim.isNull() && !(headDim.isIntegralNumber() && heads > 0 && headDim.asLong() * heads == hidden)) {
            throw f.error("head_dim", "only hidden_size / num_attention_heads = " + (heads > 0 ? hidden / heads : "?")
                    + " is implemented, found " + brief(headDim));
        }
        Rope.Llama3Scaling scaling = ropeScaling(f, root);
        try {
            return new LlamaConfig(f.integer("vocab_size", null), hidden, f.integer("intermediate_size", null),
                    f.integer("num_hidden_layers", null), heads, f.integer("num_key_value_heads", architecture.equals(QWEN2) ? null : heads),
                    f.number("rms_norm_eps", null), ropeTheta(f, root), f.bool("tie_word_embeddings", false),
                    f.integer("max_position_embeddings", null), f.integer("bos_token_id", -1), f.ids("eos_token_id"),
                    architecture, scaling, biased);
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * The end-of-sequence ids a {@code generation_config.json} gives generation, as transformers'
     * {@code generate} takes them: its {@code eos_token_id} (one id or a list) overrides config.json's
     * when the file exists and sets it (Llama 3 instruct models stop on {@code <|eot_id|>} this way,
     * which config.json does not list). Empty when the file is absent or leaves the field unset.
     *
     * @throws IOException naming the file and the field when it is not JSON or the ids are not integers
     */
    public static Optional<List<Integer>> generationEosTokenIds(Path file) throws IOException {
        if (!Files.isRegularFile(file)) return Optional.empty();
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new IOException(file + ": expected a JSON object, found " + brief(root));
        JsonNode eos = root.get("eos_token_id");
        if (eos == null || eos.isNull()) return Optional.empty();
        return Optional.of(new Fields(file, root, "").ids("eos_token_id"));
    }

    /** This config with generation's end-of-sequence ids replaced (see {@link #generationEosTokenIds}). */
    public LlamaConfig withEosTokenIds(List<Integer> ids) {
        return new LlamaConfig(vocabSize, hidden, intermediate, layers, heads, kvHeads, rmsNormEps, ropeTheta, tieWordEmbeddings,
                maxPositions, bosTokenId, ids, architecture, ropeScaling, biased);
    }

    private static String architecture(Fields f, JsonNode root) throws IOException {
        JsonNode architectures = root.get("architectures");
        if (architectures != null && !architectures.isNull()) {
            if (!architectures.isArray() || architectures.size() == 0 || !architectures.get(0).isTextual()) {
                throw f.error("architectures", "expected a list of class names, found " + brief(architectures));
            }
            String name = architectures.get(0).textValue();
            if (!MODEL_TYPES.containsValue(name)) {
                throw f.error("architectures", "this decoder implements " + LLAMA + " and " + QWEN2 + ", not " + brief(architectures));
            }
            return name;
        }
        String type = f.text("model_type", null);
        if (!MODEL_TYPES.containsKey(type)) throw f.error("architectures", "missing, and model_type is not \"llama\" or \"qwen2\"");
        return MODEL_TYPES.get(type);
    }

    /**
     * The RoPE parameters: rope_parameters (transformers 5) or rope_scaling, whichever the file has;
     * both is refused, since which one transformers would use depends on its version.
     */
    private static Fields ropeFields(Fields f, JsonNode root) throws IOException {
        JsonNode parameters = root.get("rope_parameters"), scaling = root.get("rope_scaling");
        boolean hasParameters = parameters != null && !parameters.isNull(), hasScaling = scaling != null && !scaling.isNull();
        if (hasParameters && hasScaling) throw f.error("rope_scaling", "given together with rope_parameters; expected one of them");
        if (!hasParameters && !hasScaling) return null;
        String field = hasParameters ? "rope_parameters" : "rope_scaling";
        JsonNode rope = hasParameters ? parameters : scaling;
        if (!rope.isObject()) throw f.error(field, "expected an object, found " + brief(rope));
        for (String layerType : new String[] {"full_attention", "sliding_attention"}) {
            if (rope.has(layerType)) throw f.error(field, "RoPE parameters per layer type are not implemented, found " + brief(rope));
        }
        return new Fields(f.file(), rope, field + ".");
    }

    /** Null for plain RoPE (rope_type "default", or no RoPE parameters at all). */
    private static Rope.Llama3Scaling ropeScaling(Fields f, JsonNode root) throws IOException {
        Fields rope = ropeFields(f, root);
        if (rope == null) return null;
        String type = rope.text("rope_type", rope.text("type", null));
        if (type == null) throw rope.error("rope_type", "missing (and no legacy 'type'); expected \"default\" or \"llama3\"");
        double partial = rope.number("partial_rotary_factor", 1.0);
        if (partial != 1.0) throw rope.error("partial_rotary_factor", "only 1 (RoPE on the whole head) is implemented, found " + partial);
        if (type.equals("default")) return null;
        if (!type.equals("llama3")) {
            throw rope.error("rope_type", "\"" + type + "\" is not implemented; expected \"default\" (plain RoPE) or \"llama3\" (Llama 3.1's scaling)");
        }
        try {
            return new Rope.Llama3Scaling(rope.number("factor", null), rope.number("low_freq_factor", null), rope.number("high_freq_factor", null),
                    rope.integer("original_max_position_embeddings", null));
        } catch (IllegalArgumentException e) {
            throw new IOException(f.file() + ": field '" + rope.prefix().substring(0, rope.prefix().length() - 1) + "': " + e.getMessage(), e);
        }
    }

    /** rope_theta at the top level or inside rope_parameters (not both, unless equal); 10000 when neither. */
    private static double ropeTheta(Fields f, JsonNode root) throws IOException {
        Fields rope = ropeFields(f, root);
        Double inside = rope == null ? null : rope.numberOrNull("rope_theta"), top = f.numberOrNull("rope_theta");
        if (inside != null && top != null && !inside.equals(top)) {
            throw f.error("rope_theta", top + " disagrees with " + rope.prefix() + "rope_theta " + inside);
        }
        return inside != null ? inside : top != null ? top : 10000.0;
    }

    /** Typed access to the fields of one config file; every failure names the file and the field. */
    private record Fields(Path file, JsonNode root, String prefix) {
        IOException error(String field, String problem) {
            return new IOException(file + ": field '" + prefix + field + "': " + problem);
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

        /** The number, or null when the field is absent or JSON null. */
        Double numberOrNull(String field) throws IOException {
            return root.get(field) == null || root.get(field).isNull() ? null : number(field, null);
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
