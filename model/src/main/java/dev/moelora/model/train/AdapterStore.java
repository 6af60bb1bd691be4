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
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A trained adapter as others use it, in PEFT's layout: {@code adapter_model.safetensors} (every
 * trainable tensor; LoRA ones under PEFT's key names, so PEFT loads a LoRA adapter of the decoder
 * as it is) and {@code adapter_config.json}. Every family uses these two file names. It holds no
 * optimizer or trainer state: continuing a run is what checkpoints are for
 * ({@code dev.moelora.model.checkpoint}). It never writes into a directory the caller did not choose.
 */
public final class AdapterStore {
    /** PEFT's name for the tensor file. */
    public static final String ADAPTER = "adapter_model.safetensors";
    public static final String CONFIG = "adapter_config.json";
    /**
     * The field of adapter_config.json that names a family PEFT does not have ({@code TIED_LORA},
     * {@code MOELORA}); a LoRA file carries PEFT's {@code peft_type} instead.
     */
    public static final String MOELORA_TYPE = "moelora_type";
    /** The tensor file's name before it took PEFT's. */
    private static final String OLD_ADAPTER = "adapter.safetensors";
    private static final ObjectMapper JSON = new ObjectMapper();

    private AdapterStore() {}

    /** PEFT's key for a LoRA tensor ({@code base_model.model.<module>.lora_A.weight}); other parameters keep their names. */
    static String key(String parameterName) {
        if (parameterName.endsWith(".lora_A") || parameterName.endsWith(".lora_B")) return "base_model.model." + parameterName + ".weight";
        return parameterName;
    }

    /**
     * Writes the adapter into {@code dir}: {@code tensors} (by parameter name) as adapter_model.safetensors
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
     * Loads the tensors of {@code dir/adapter_model.safetensors} into {@code params} by key and
     * shape. Every parameter must be in the file with its shape, and every tensor of the file must
     * go to a parameter: one left over means the adapter was saved for other targets or another
     * model, and an error names it.
     */
    public static void load(Path dir, List<Parameter> params) throws IOException {
        load(dir, params, key -> false);
    }

    /**
     * As {@link #load(Path, List)}, except that tensors whose key {@code alsoSaved} accepts may be
     * in the file without a parameter to take them (an encoder adapter's task heads, when only the
     * trunk is wanted). Errors name the file, the tensor and both shapes.
     */
    public static void load(Path dir, List<Parameter> params, Predicate<String> alsoSaved) throws IOException {
        Path adapter = tensorFile(dir);
        try (SafetensorsFile f = Safetensors.open(adapter)) {
            Set<String> unused = new TreeSet<>();
            for (SafetensorsFile.TensorInfo t : f.tensors()) unused.add(t.name());
            for (Parameter p : params) {
                String k = key(p.name());
                if (!unused.remove(k)) {
                    throw new IOException(adapter + ": no tensor '" + k + "' " + Arrays.toString(p.value().shape())
                            + " (the adapter was saved for another model, targets or tasks?)");
                }
                long[] shape = f.info(k).shape();
                if (!Arrays.equals(shape, p.value().shape())) {
                    throw new IOException(adapter + ": tensor '" + k + "' has shape " + Arrays.toString(shape)
                            + ", the model expects " + Arrays.toString(p.value().shape()));
                }
                p.value().assign(f.read(k).castTo(p.value().dataType()));
            }
            unused.removeIf(alsoSaved);
            if (!unused.isEmpty()) {
                throw new IOException(adapter + ": tensor '" + unused.iterator().next() + "' belongs to no adapted module of the model"
                        + (unused.size() > 1 ? " (nor do " + (unused.size() - 1) + " more)" : "")
                        + " (the adapter was saved for other targets or another model?)");
            }
        }
    }

    /** {@code dir}'s tensor file; its absence is an error that says what is there instead. */
    public static Path tensorFile(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException(dir + ": not a directory (an adapter is a directory with " + CONFIG + " and " + ADAPTER + ")");
        Path adapter = dir.resolve(ADAPTER);
        if (Files.isRegularFile(adapter)) return adapter;
        if (Files.isRegularFile(dir.resolve(OLD_ADAPTER))) {
            throw new IOException(dir + ": no " + ADAPTER + "; it holds " + OLD_ADAPTER + ", the name moelora used before it took PEFT's: rename the file");
        }
        if (Files.isRegularFile(dir.resolve("adapter_model.bin"))) {
            throw new IOException(dir + ": no " + ADAPTER + "; it holds adapter_model.bin (PyTorch pickle), which is not read: "
                    + "save the adapter with safetensors (PEFT's default, save_pretrained(..., safe_serialization=True))");
        }
        throw new IOException(dir + ": no " + ADAPTER);
    }
}
