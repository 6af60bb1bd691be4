package dev.moelora.model.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Saves and restores a trained adapter: {@code adapter.safetensors} (every trainable tensor,
 * LoRA ones under PEFT's key names), {@code adapter_config.json}, and for resuming
 * {@code optimizer.safetensors} (AdamW moments) plus {@code trainer_state.json} (step and data
 * cursor). It never writes into a directory it did not create files in before: callers choose it.
 */
public final class AdapterStore {
    public static final String ADAPTER = "adapter.safetensors";
    public static final String CONFIG = "adapter_config.json";
    public static final String OPTIMIZER = "optimizer.safetensors";
    public static final String STATE = "trainer_state.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private AdapterStore() {}

    /** PEFT's key for a LoRA tensor ({@code base_model.model.<module>.lora_A.weight}); other parameters keep their names. */
    static String key(Parameter p) {
        String n = p.name();
        if (n.endsWith(".lora_A") || n.endsWith(".lora_B")) return "base_model.model." + n + ".weight";
        return n;
    }

    /** The trainer state a resumed run continues from. */
    public record State(int step, int epoch, int position, String configHash) {}

    public static void save(Path dir, List<Parameter> params, ObjectNode adapterConfig, AdamW optimizer, State state) throws IOException {
        Files.createDirectories(dir);
        Map<String, INDArray> tensors = new TreeMap<>();
        Map<String, INDArray> moments = new TreeMap<>();
        Map<String, Parameter> byName = new HashMap<>();
        for (Parameter p : params) {
            tensors.put(key(p), p.value());
            byName.put(p.name(), p);
        }
        for (AdamW.Moment m : optimizer.moments()) {
            String k = key(byName.get(m.parameter()));
            moments.put(k + ".exp_avg", m.first());
            moments.put(k + ".exp_avg_sq", m.second());
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("step", Integer.toString(state.step()));
        Safetensors.write(dir.resolve(ADAPTER), tensors, meta);
        Safetensors.write(dir.resolve(OPTIMIZER), moments, Map.of("step", Long.toString(optimizer.steps())));
        writeJson(dir.resolve(CONFIG), adapterConfig);
        ObjectNode s = JSON.createObjectNode();
        s.put("step", state.step());
        s.put("epoch", state.epoch());
        s.put("position", state.position());
        s.put("config_hash", state.configHash());
        s.put("optimizer_steps", optimizer.steps());
        writeJson(dir.resolve(STATE), s);
    }

    private static void writeJson(Path file, JsonNode node) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node));
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * Loads the tensors of {@code dir/adapter.safetensors} into {@code params} (by name and
     * shape; a missing or misshapen tensor is an error naming it), and, when present, the
     * optimizer moments. Returns the saved trainer state, or null when the directory holds only
     * an adapter.
     */
    public static State load(Path dir, List<Parameter> params, AdamW optimizer) throws IOException {
        Path adapter = dir.resolve(ADAPTER);
        if (!Files.isRegularFile(adapter)) throw new IOException(dir + ": no " + ADAPTER + " to resume from");
        try (SafetensorsFile f = Safetensors.open(adapter)) {
            for (Parameter p : params) {
                String k = key(p);
                INDArray saved = readMatching(f, adapter, k, p.value());
                p.value().assign(saved);
            }
        }
        Path state = dir.resolve(STATE), moments = dir.resolve(OPTIMIZER);
        if (!Files.isRegularFile(state) || !Files.isRegularFile(moments)) return null;
        JsonNode s = JSON.readTree(state.toFile());
        Map<String, INDArray> first = new HashMap<>(), second = new HashMap<>();
        try (SafetensorsFile f = Safetensors.open(moments)) {
            for (Parameter p : params) {
                first.put(p.name(), readMatching(f, moments, key(p) + ".exp_avg", p.value()));
                second.put(p.name(), readMatching(f, moments, key(p) + ".exp_avg_sq", p.value()));
            }
        }
        optimizer.restore(requireInt(s, state, "optimizer_steps"), first, second);
        return new State(requireInt(s, state, "step"), requireInt(s, state, "epoch"), requireInt(s, state, "position"),
                s.path("config_hash").asText(""));
    }

    private static INDArray readMatching(SafetensorsFile f, Path file, String key, INDArray like) throws IOException {
        if (f.tensors().stream().noneMatch(t -> t.name().equals(key))) {
            throw new IOException(file + ": no tensor '" + key + "' (the adapter was saved for another model, targets or tasks?)");
        }
        INDArray saved = f.read(key);
        if (!Arrays.equals(saved.shape(), like.shape())) {
            throw new IOException(file + ": tensor '" + key + "' has shape " + Arrays.toString(saved.shape())
                    + ", this run expects " + Arrays.toString(like.shape()));
        }
        return saved.castTo(like.dataType());
    }

    private static int requireInt(JsonNode node, Path file, String field) throws IOException {
        JsonNode v = node.get(field);
        if (v == null || !v.canConvertToInt()) throw new IOException(file + ": field '" + field + "' must be an integer");
        return v.intValue();
    }
}
