package dev.moelora.model.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.files.DurableFiles;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A trained adapter as others use it: {@code adapter.safetensors} (every trainable tensor, LoRA
 * ones under PEFT's key names) and {@code adapter_config.json}. It holds no optimizer or trainer
 * state: continuing a run is what checkpoints are for ({@code dev.moelora.model.checkpoint}). It
 * never writes into a directory the caller did not choose.
 */
public final class AdapterStore {
    public static final String ADAPTER = "adapter.safetensors";
    public static final String CONFIG = "adapter_config.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private AdapterStore() {}

    /** PEFT's key for a LoRA tensor ({@code base_model.model.<module>.lora_A.weight}); other parameters keep their names. */
    static String key(String parameterName) {
        if (parameterName.endsWith(".lora_A") || parameterName.endsWith(".lora_B")) return "base_model.model." + parameterName + ".weight";
        return parameterName;
    }

    /**
     * Writes the adapter into {@code dir}: {@code tensors} (by parameter name) as adapter.safetensors
     * under their keys, with the step they were trained to in its metadata, and the configuration;
     * each file replaced atomically.
     */
    public static void write(Path dir, Map<String, INDArray> tensors, ObjectNode adapterConfig, long step) throws IOException {
        Files.createDirectories(dir);
        Map<String, INDArray> byKey = new TreeMap<>();
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            if (byKey.put(key(e.getKey()), e.getValue()) != null) throw new IllegalArgumentException("two tensors under key " + key(e.getKey()));
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("step", Long.toString(step));
        Safetensors.write(dir.resolve(ADAPTER), byKey, meta);
        DurableFiles.write(dir.resolve(CONFIG), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(adapterConfig)
                .getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Loads the tensors of {@code dir/adapter.safetensors} into {@code params} by key and shape; a
     * missing or misshapen tensor is an error naming it.
     */
    public static void load(Path dir, List<Parameter> params) throws IOException {
        Path adapter = dir.resolve(ADAPTER);
        if (!Files.isRegularFile(adapter)) throw new IOException(dir + ": no " + ADAPTER);
        try (SafetensorsFile f = Safetensors.open(adapter)) {
            for (Parameter p : params) {
                String k = key(p.name());
                if (f.tensors().stream().noneMatch(t -> t.name().equals(k))) {
                    throw new IOException(adapter + ": no tensor '" + k + "' (the adapter was saved for another model, targets or tasks?)");
                }
                INDArray saved = f.read(k);
                if (!Arrays.equals(saved.shape(), p.value().shape())) {
                    throw new IOException(adapter + ": tensor '" + k + "' has shape " + Arrays.toString(saved.shape())
                            + ", this run expects " + Arrays.toString(p.value().shape()));
                }
                p.value().assign(saved.castTo(p.value().dataType()));
            }
        }
    }
}
