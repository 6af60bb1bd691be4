package dev.moelora.cluster.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.data.Task;
import dev.moelora.model.train.AdapterStore;
import java.util.List;
import java.util.Locale;

/**
 * {@code adapter_config.json}: how a saved adapter was configured. LoRA is PEFT's method, so its
 * file uses PEFT's {@code LoraConfig} fields ({@code peft_type = "LORA"}, {@code r},
 * {@code lora_alpha}, {@code lora_dropout}, {@code target_modules}, ...). PEFT has no Tied-LoRA and
 * no MoELoRA: their files carry no {@code peft_type} (a PEFT loader must not mistake them for one
 * of its methods) but {@code moelora_type} ({@code "TIED_LORA"}, {@code "MOELORA"}) with their own
 * settings; MoELoRA records its expert rank, not a LoRA rank. Every file also says which base model
 * it adapts and, for the encoder, the task heads saved with it. It only describes; it never reads
 * tensors.
 */
public final class AdapterJson {
    /** The field naming a family PEFT does not have. */
    public static final String MOELORA_TYPE = AdapterStore.MOELORA_TYPE;
    private static final ObjectMapper JSON = new ObjectMapper();

    private AdapterJson() {}

    /**
     * @param description the adapter as {@code Adapters.describe()} puts it
     * @param taskType PEFT's task_type ("CAUSAL_LM" for the decoder), or null for the encoder's task heads
     * @param tasks    the task heads saved with the adapter (empty for the decoder)
     */
    public static ObjectNode of(RunConfig config, String description, String baseModel, String taskType, List<Task> tasks) {
        ObjectNode o = JSON.createObjectNode();
        String type = config.string("adapter.type");
        List<String> targets = config.strings("adapter.targets");
        switch (type) {
            case "lora" -> {
                o.put("peft_type", "LORA");
                if (taskType == null) o.putNull("task_type");
                else o.put("task_type", taskType);
                o.put("base_model_name_or_path", baseModel);
                o.put("r", config.integer("adapter.rank"));
                o.put("lora_alpha", config.number("adapter.alpha"));
                o.put("lora_dropout", config.number("adapter.dropout"));
                putTargets(o, targets);
                o.put("bias", "none");
                o.put("fan_in_fan_out", false);
                o.put("init_lora_weights", true);
                o.put("use_rslora", false);
                o.put("use_dora", false);
                o.put("inference_mode", true);
                o.putNull("modules_to_save");
            }
            case "tied-lora" -> {
                o.put(MOELORA_TYPE, "TIED_LORA");
                o.put("base_model_name_or_path", baseModel);
                o.put("preset", config.string("adapter.preset"));
                o.put("r", config.integer("adapter.rank"));
                o.put("alpha", config.number("adapter.alpha"));
                o.put("dropout", config.number("adapter.dropout"));
                putTargets(o, targets);
                o.put("share_a_across_qkv", config.bool("adapter.share-a-across-qkv"));
                o.put("seed", config.longValue("train.seed"));
            }
            case "moelora" -> {
                o.put(MOELORA_TYPE, "MOELORA");
                o.put("base_model_name_or_path", baseModel);
                o.put("experts", config.integer("adapter.experts"));
                o.put("top_k", config.integer("adapter.top-k"));
                o.put("expert_rank", config.integer("adapter.expert-rank"));
                o.put("alpha", config.number("adapter.alpha"));
                o.put("dropout", config.number("adapter.dropout"));
                putTargets(o, targets);
                o.put("balance_weight", config.number("adapter.balance-weight"));
                o.put("contrastive_weight", config.number("adapter.contrastive-weight"));
                o.put("temperature", config.number("adapter.temperature"));
                o.put("max_features_per_expert", config.integer("adapter.max-features-per-expert"));
                o.put("capacity_factor", config.number("adapter.capacity-factor"));
            }
            case "none" -> {
                o.put(MOELORA_TYPE, "NONE");
                o.put("base_model_name_or_path", baseModel);
            }
            default -> throw new IllegalArgumentException("adapter.type must be one of lora, tied-lora, moelora, none; got '" + type + "'");
        }
        o.put("description", description);
        if (taskType != null && !o.has("task_type")) o.put("task_type", taskType);
        if (!tasks.isEmpty()) {
            ArrayNode heads = o.putArray("tasks");
            for (Task t : tasks) {
                ObjectNode h = heads.addObject();
                h.put("name", t.name());
                h.put("format", t.format().name().toLowerCase(Locale.ROOT));
                ArrayNode labels = h.putArray("labels");
                t.labels().forEach(labels::add);
            }
        }
        return o;
    }

    /**
     * PEFT's target_modules: a list of module-name suffixes, or one string that is a regular
     * expression matched against the whole module name; our {@code re:} prefix marks the latter.
     */
    private static void putTargets(ObjectNode o, List<String> targets) {
        long patterns = targets.stream().filter(t -> t.startsWith("re:")).count();
        if (patterns == 1 && targets.size() == 1) {
            o.put("target_modules", targets.get(0).substring(3));
            return;
        }
        if (patterns > 0) {
            o.put("target_modules", String.join("|", targets.stream()
                    .map(t -> t.startsWith("re:") ? "(?:" + t.substring(3) + ")" : "(?:.*\\.)?" + literal(t)).toList()));
            return;
        }
        ArrayNode a = o.putArray("target_modules");
        targets.forEach(a::add);
    }

    /** A module name as a regular expression both Java and Python read the same way (no \\Q...\\E). */
    private static String literal(String name) {
        StringBuilder sb = new StringBuilder();
        for (char c : name.toCharArray()) {
            if (!Character.isLetterOrDigit(c) && c != '_') sb.append('\\');
            sb.append(c);
        }
        return sb.toString();
    }
}
