package dev.moelora.cluster.setup;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.train.AdapterStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * A saved adapter directory put onto a base model, for inference: {@code adapter_config.json} and
 * {@code adapter_model.safetensors} as moelora writes them (LoRA in PEFT's fields, Tied-LoRA and
 * MoELoRA under {@code moelora_type}), or a LoRA directory PEFT itself saved. The family is built
 * from the file's settings as a run would build it from the same {@code adapter.*} keys
 * ({@link AdapterFamily}), then every tensor is assigned by name and shape; a tensor missing, left
 * over or of another shape is an error naming the file, the tensor and both shapes.
 *
 * <p>A PEFT LoRA file is read for {@code r}, {@code lora_alpha}, {@code lora_dropout} and
 * {@code target_modules} (a list of name suffixes, one regular expression for the whole name, or
 * {@code "all-linear"}). Every other field must leave LoRA's math as moelora computes it: options
 * that change it (DoRA, rank-stabilised scaling, biases, transposed weights, per-module ranks or
 * alphas, extra trained modules, restricted layers, initialisations that rewrite the base
 * weights, and any field this class does not know holding a value other than null, false or
 * empty) are refused by name; it never loads an adapter whose output would silently differ from
 * PEFT's. Bookkeeping fields (paths, versions, task type, how it was initialised) are ignored.
 * It never writes.
 */
public final class SavedAdapter {
    /**
     * @param family   the {@code adapter.type} it was built as: lora, tied-lora, moelora or none
     * @param settings the file's settings as the {@code adapter.*} keys (and {@code train.seed}) of a run
     */
    public record Loaded(Path dir, String family, Adapters adapters, RunConfig settings) {}

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Fields every file may carry that say where it came from, not what it computes. */
    private static final Set<String> BOOKKEEPING = Set.of("base_model_name_or_path", "description", "task_type", "tasks");
    /** PEFT LoraConfig fields that do not change a saved adapter's output (bookkeeping, or training and initialisation only). */
    private static final Set<String> PEFT_IGNORED = Set.of("peft_version", "revision", "inference_mode", "auto_mapping", "megatron_core",
            "qalora_group_size", "eva_config", "lora_dropout");
    /** init_lora_weights values that leave the base weights as they were. */
    private static final Set<String> PLAIN_INITS = Set.of("true", "false", "gaussian", "eva");

    private SavedAdapter() {}

    /**
     * Builds the adapter family of {@code dir} on {@code model} and loads its tensors; the adapters
     * are in evaluation mode (no dropout). Task heads saved with an encoder adapter ({@code head.*},
     * listed under {@code tasks}) are left in the file.
     */
    public static Loaded load(Path dir, AdaptableModel model) throws IOException {
        Path file = dir.resolve(AdapterStore.CONFIG);
        RunConfig settings = settings(dir);
        AdapterStore.tensorFile(dir);
        Adapters adapters;
        try {
            adapters = AdapterFamily.apply(settings, model, settings.longValue("train.seed"));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage() + " (the file's fields as run settings: " + settings.string("adapter.type")
                    + ", targets " + settings.strings("adapter.targets") + ")", e);
        }
        boolean heads = read(file).has("tasks");
        Predicate<String> alsoSaved = key -> heads && key.startsWith("head.");
        AdapterStore.load(dir, adapters.parameters(), alsoSaved);
        adapters.setTraining(false);
        adapters.setRowMask(null);
        return new Loaded(dir, settings.string("adapter.type"), adapters, settings);
    }

    /** The settings of {@code dir/adapter_config.json} as a run's adapter.* keys, every field checked; reads no tensor. */
    public static RunConfig settings(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException(dir + ": not a directory (an adapter is a directory with " + AdapterStore.CONFIG + " and " + AdapterStore.ADAPTER + ")");
        }
        Path file = dir.resolve(AdapterStore.CONFIG);
        JsonNode o = read(file);
        Fields f = new Fields(file, o);
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put("train.seed", 0L);
        boolean moelora = o.has(AdapterStore.MOELORA_TYPE), peft = o.has("peft_type");
        if (moelora && peft) {
            throw new IOException(file + ": fields 'peft_type' and '" + AdapterStore.MOELORA_TYPE + "' together: an adapter is PEFT's LoRA or one of moelora's own families, not both");
        }
        if (peft) {
            String type = f.text("peft_type");
            if (!type.equals("LORA")) {
                throw new IOException(file + ": field 'peft_type': PEFT method '" + type + "' is not implemented (moelora loads LORA, and its own TIED_LORA and MOELORA)");
            }
            peftLora(f, keys);
        } else if (moelora) {
            String type = f.text(AdapterStore.MOELORA_TYPE);
            switch (type) {
                case "TIED_LORA" -> {
                    keys.put("adapter.type", "tied-lora");
                    keys.put("adapter.preset", f.text("preset"));
                    keys.put("adapter.rank", f.integer("r", 1));
                    keys.put("adapter.alpha", f.positive("alpha"));
                    keys.put("adapter.dropout", f.dropout("dropout"));
                    keys.put("adapter.targets", f.targets());
                    keys.put("adapter.share-a-across-qkv", f.bool("share_a_across_qkv"));
                    keys.put("train.seed", f.integer("seed", Long.MIN_VALUE));
                    f.onlyThese("preset", "r", "alpha", "dropout", "target_modules", "share_a_across_qkv", "seed");
                }
                case "MOELORA" -> {
                    keys.put("adapter.type", "moelora");
                    keys.put("adapter.experts", f.integer("experts", 1));
                    keys.put("adapter.top-k", f.integer("top_k", 1));
                    keys.put("adapter.expert-rank", f.integer("expert_rank", 1));
                    keys.put("adapter.alpha", f.positive("alpha"));
                    keys.put("adapter.dropout", f.dropout("dropout"));
                    keys.put("adapter.targets", f.targets());
                    keys.put("adapter.balance-weight", f.number("balance_weight"));
                    keys.put("adapter.contrastive-weight", f.number("contrastive_weight"));
                    keys.put("adapter.temperature", f.positive("temperature"));
                    keys.put("adapter.max-features-per-expert", f.integer("max_features_per_expert", 2));
                    // training only (evaluation is dropless); files before it was recorded have none
                    keys.put("adapter.capacity-factor", f.o().has("capacity_factor") ? f.number("capacity_factor") : 0.0);
                    f.onlyThese("experts", "top_k", "expert_rank", "alpha", "dropout", "target_modules", "balance_weight", "contrastive_weight",
                            "temperature", "max_features_per_expert", "capacity_factor");
                }
                case "NONE" -> {
                    keys.put("adapter.type", "none");
                    f.onlyThese();
                }
                default -> throw new IOException(file + ": field '" + AdapterStore.MOELORA_TYPE + "': unknown adapter family '" + type
                        + "' (known: TIED_LORA, MOELORA, NONE; LoRA files carry PEFT's peft_type = LORA instead)");
            }
        } else {
            throw new IOException(file + ": neither 'peft_type' (a PEFT adapter) nor '" + AdapterStore.MOELORA_TYPE + "' (one of moelora's own families): not an adapter configuration");
        }
        try {
            return RunConfig.of(ConfigFactory.parseMap(keys, file.toString()));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /** PEFT's LoraConfig as the adapter.* keys; every field that would change the math is refused by name. */
    private static void peftLora(Fields f, Map<String, Object> keys) throws IOException {
        keys.put("adapter.type", "lora");
        keys.put("adapter.rank", f.integer("r", 1));
        keys.put("adapter.alpha", f.o.has("lora_alpha") ? f.positive("lora_alpha") : 8.0); // PEFT's default
        keys.put("adapter.dropout", f.o.has("lora_dropout") ? f.dropout("lora_dropout") : 0.0);
        keys.put("adapter.targets", f.targets());
        Set<String> read = Set.of("peft_type", "r", "lora_alpha", "lora_dropout", "target_modules");
        for (Map.Entry<String, JsonNode> e : f.o.properties()) {
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (read.contains(name) || BOOKKEEPING.contains(name) || PEFT_IGNORED.contains(name)) continue;
            String why = switch (name) {
                case "bias" -> v.isTextual() && v.textValue().equals("none") ? null
                        : "trained biases ('all', 'lora_only') are not implemented: only bias = \"none\"";
                case "init_lora_weights" -> PLAIN_INITS.contains(v.asText()) ? null
                        : "this initialisation rewrites the base weights (PiSSA, OLoRA, LoftQ, CorDA ...), so the adapter does not apply to the "
                                + "original checkpoint; only true, false, \"gaussian\" and \"eva\" are loaded";
                case "use_dora" -> neutral(v) ? null : "DoRA (weight-decomposed LoRA) is not implemented";
                case "use_rslora" -> neutral(v) ? null : "rank-stabilised scaling (alpha / sqrt(r)) is not implemented; moelora scales by alpha / r";
                case "fan_in_fan_out" -> neutral(v) ? null : "transposed (Conv1D, GPT-2 style) weights are not implemented; LLaMA's are nn.Linear";
                case "rank_pattern" -> neutral(v) ? null : "per-module ranks are not implemented: every module has rank r";
                case "alpha_pattern" -> neutral(v) ? null : "per-module alphas are not implemented: every module has lora_alpha";
                case "modules_to_save" -> neutral(v) ? null : "fully trained modules saved with the adapter are not loaded";
                case "layers_to_transform", "layers_pattern" -> neutral(v) ? null : "restricting the adapter to some layers is not implemented";
                default -> neutral(v) ? null : "a PEFT option moelora does not implement (it reads r, lora_alpha, lora_dropout and "
                        + "target_modules; other options must be null, false or empty)";
            };
            if (why != null) throw new IOException(f.file + ": field '" + name + "' = " + v + ": " + why);
        }
    }

    /** null, false, 0-length string, empty list or object: an option that is off. */
    private static boolean neutral(JsonNode v) {
        return v == null || v.isNull() || (v.isBoolean() && !v.booleanValue()) || (v.isContainerNode() && v.isEmpty())
                || (v.isTextual() && v.textValue().isEmpty());
    }

    private static JsonNode read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(file.getParent() + ": no " + AdapterStore.CONFIG);
        JsonNode o;
        try {
            o = JSON.readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (o == null || !o.isObject()) throw new IOException(file + ": expected a JSON object, found " + (o == null ? "nothing" : o.getNodeType()));
        return o;
    }

    /** Typed fields of one file, each error naming the file and the field. */
    private record Fields(Path file, JsonNode o) {
        private JsonNode field(String name) throws IOException {
            JsonNode v = o.get(name);
            if (v == null || v.isNull()) throw new IOException(file + ": field '" + name + "' is missing");
            return v;
        }

        String text(String name) throws IOException {
            JsonNode v = field(name);
            if (!v.isTextual()) throw new IOException(file + ": field '" + name + "': expected a string, found " + v);
            return v.textValue();
        }

        long integer(String name, long min) throws IOException {
            JsonNode v = field(name);
            if (!v.isIntegralNumber() && !(v.isNumber() && v.doubleValue() == Math.rint(v.doubleValue()))) {
                throw new IOException(file + ": field '" + name + "': expected an integer, found " + v);
            }
            if (v.asLong() < min) throw new IOException(file + ": field '" + name + "': expected at least " + min + ", found " + v);
            return v.asLong();
        }

        double number(String name) throws IOException {
            JsonNode v = field(name);
            if (!v.isNumber() || !Double.isFinite(v.doubleValue()) || v.doubleValue() < 0) {
                throw new IOException(file + ": field '" + name + "': expected a finite number >= 0, found " + v);
            }
            return v.doubleValue();
        }

        double positive(String name) throws IOException {
            double d = number(name);
            if (d == 0) throw new IOException(file + ": field '" + name + "': expected a number > 0, found 0");
            return d;
        }

        double dropout(String name) throws IOException {
            double d = number(name);
            if (d >= 1) throw new IOException(file + ": field '" + name + "': expected a dropout in [0, 1), found " + d);
            return d;
        }

        boolean bool(String name) throws IOException {
            JsonNode v = field(name);
            if (!v.isBoolean()) throw new IOException(file + ": field '" + name + "': expected true or false, found " + v);
            return v.booleanValue();
        }

        /**
         * target_modules as adapter.targets: a list of name suffixes as they are; one string is a
         * regular expression the whole module name must match ({@code re:}), except PEFT's
         * {@code "all-linear"}: every projection of the trunk (the LM head is not one of them).
         */
        List<String> targets() throws IOException {
            JsonNode v = field("target_modules");
            List<String> out = new ArrayList<>();
            if (v.isTextual()) {
                out.add(v.textValue().equals("all-linear") ? "re:.*" : "re:" + v.textValue());
            } else if (v.isArray() && !v.isEmpty()) {
                for (JsonNode t : v) {
                    if (!t.isTextual() || t.textValue().isEmpty()) throw new IOException(file + ": field 'target_modules': expected module names, found " + t);
                    out.add(t.textValue());
                }
            } else {
                throw new IOException(file + ": field 'target_modules': expected a list of module names or a regular expression, found " + v);
            }
            return out;
        }

        /** Every field is one of {@code known} or bookkeeping: moelora's own files have no optional extras. */
        void onlyThese(String... known) throws IOException {
            Set<String> allowed = Set.of(known);
            for (Map.Entry<String, JsonNode> e : o.properties()) {
                String name = e.getKey();
                if (!name.equals(AdapterStore.MOELORA_TYPE) && !allowed.contains(name) && !BOOKKEEPING.contains(name)) {
                    throw new IOException(file + ": field '" + name + "' is not one of " + o.get(AdapterStore.MOELORA_TYPE).textValue()
                            + "'s (" + String.join(", ", known) + ")");
                }
            }
        }
    }
}
