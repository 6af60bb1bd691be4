package dev.moelora.model.llama;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Loads a Hugging Face LLaMA-family checkpoint directory: {@code config.json} plus either
 * {@code model.safetensors} or shards listed by {@code model.safetensors.index.json}
 * ({@code weight_map}: tensor name to shard file), and {@code generation_config.json} when present
 * (its end-of-sequence ids are the ones generation stops on). F32, F16, BF16 and F64 tensors become FLOAT
 * or DOUBLE, as the caller asks.
 *
 * <p>Everything is checked from the headers before any tensor data is read: every tensor the
 * config implies is present once with its shape, and nothing else is there. An unexpected tensor
 * is an error, not a warning, because it means the checkpoint is not the architecture the config
 * claims (a bias the architecture does not have, a tied lm_head stored anyway, another model's
 * layers) and running it without that tensor would silently compute something else. The one exception is
 * {@code *.rotary_emb.inv_freq}, a buffer older exports saved that this decoder recomputes from
 * rope_theta; it is skipped. Every error names the directory or file, the tensor, and what was
 * expected. This class never writes to the directory.
 */
public final class LlamaCheckpoint {
    public static final String CONFIG = "config.json";
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";
    /** Optional: where generation's end-of-sequence ids come from when it sets them ({@link LlamaConfig#generationEosTokenIds}). */
    public static final String GENERATION_CONFIG = "generation_config.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private LlamaCheckpoint() {}

    /** The decoder in {@code dir}, its weights as {@code dtype} (FLOAT or DOUBLE). */
    public static LlamaDecoder load(Path dir, DataType dtype) throws IOException {
        LlamaConfig config = LlamaConfig.read(requireDirectory(dir).resolve(CONFIG));
        config = LlamaConfig.generationEosTokenIds(dir.resolve(GENERATION_CONFIG)).map(config::withEosTokenIds).orElse(config);
        return new LlamaDecoder(config, readWeights(dir, config, dtype));
    }

    /** Every tensor of {@link LlamaConfig#weightShapes()} read from {@code dir}'s safetensors files. */
    public static Map<String, INDArray> readWeights(Path dir, LlamaConfig config, DataType dtype) throws IOException {
        if (dtype != DataType.FLOAT && dtype != DataType.DOUBLE) throw new IllegalArgumentException("weights load as FLOAT or DOUBLE, not " + dtype);
        requireDirectory(dir);
        Map<String, Path> files = weightFiles(dir);
        Map<Path, SafetensorsFile> open = new LinkedHashMap<>();
        try {
            for (Path file : new TreeSet<>(files.values())) open.put(file, Safetensors.open(file));
            checkIndexMatchesShards(files, open);
            Map<String, long[]> shapes = config.weightShapes();
            for (Map.Entry<String, Path> e : files.entrySet()) {
                String name = e.getKey();
                if (!shapes.containsKey(name) && !name.endsWith(".rotary_emb.inv_freq")) {
                    throw new IOException(e.getValue() + ": unexpected tensor '" + name + "': " + config.architecture() + " as "
                            + dir.resolve(CONFIG) + " describes it has no such tensor" + unexpectedWhy(config, name));
                }
            }
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                String name = e.getKey();
                Path file = files.get(name);
                if (file == null) {
                    throw new IOException(dir + ": missing tensor '" + name + "' " + Arrays.toString(e.getValue())
                            + (name.equals("lm_head.weight") ? " (tie_word_embeddings is false, so lm_head has its own weights)" : "")
                            + (name.endsWith(".bias") ? " (" + config.architecture() + " as " + dir.resolve(CONFIG) + " describes it adds a bias there)" : ""));
                }
                long[] shape = open.get(file).info(name).shape();
                if (!Arrays.equals(shape, e.getValue())) {
                    throw new IOException(file + ": tensor '" + name + "' has shape " + Arrays.toString(shape)
                            + ", expected " + Arrays.toString(e.getValue()) + " from " + dir.resolve(CONFIG));
                }
            }
            Map<String, INDArray> weights = new LinkedHashMap<>();
            for (String name : shapes.keySet()) {
                SafetensorsFile f = open.get(files.get(name));
                weights.put(name, dtype == DataType.FLOAT ? f.readFloat(name) : f.read(name).castTo(DataType.DOUBLE));
            }
            return weights;
        } finally {
            for (SafetensorsFile f : open.values()) f.close();
        }
    }

    /** Why the config implies no such tensor, for the names a reader might expect to be there. */
    private static String unexpectedWhy(LlamaConfig config, String name) {
        if (name.equals("lm_head.weight")) return " (tie_word_embeddings is true)";
        if (!name.endsWith(".bias")) return "";
        if (config.architecture().equals(LlamaConfig.QWEN2)) return " (Qwen2 has biases on q_proj, k_proj and v_proj only)";
        return name.contains(".mlp.") ? " (mlp_bias is false)" : " (attention_bias is false)";
    }

    /** Every tensor the index lists is in its shard, and every tensor of a shard is listed there. */
    private static void checkIndexMatchesShards(Map<String, Path> files, Map<Path, SafetensorsFile> open) throws IOException {
        for (Map.Entry<Path, SafetensorsFile> f : open.entrySet()) {
            Path file = f.getKey();
            for (SafetensorsFile.TensorInfo t : f.getValue().tensors()) {
                Path listed = files.get(t.name());
                if (!file.equals(listed)) {
                    throw new IOException(file + ": holds tensor '" + t.name() + "', which " + INDEX + " "
                            + (listed == null ? "does not list" : "puts in " + listed.getFileName()));
                }
            }
        }
        for (Map.Entry<String, Path> e : files.entrySet()) {
            if (open.get(e.getValue()).tensors().stream().noneMatch(t -> t.name().equals(e.getKey()))) {
                throw new IOException(e.getValue().resolveSibling(INDEX) + ": lists tensor '" + e.getKey() + "' in "
                        + e.getValue().getFileName() + ", which does not hold it");
            }
        }
    }

    private static Path requireDirectory(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) throw new IOException(dir + ": not a directory (a checkpoint is a directory with " + CONFIG + " and safetensors files)");
        return dir;
    }

    /** Tensor name to the file that holds it: the header of model.safetensors, or the index's weight_map. */
    static Map<String, Path> weightFiles(Path dir) throws IOException {
        Path single = dir.resolve(SINGLE_FILE), index = dir.resolve(INDEX);
        if (Files.isRegularFile(single)) {
            Map<String, Path> all = new LinkedHashMap<>();
            try (SafetensorsFile f = Safetensors.open(single)) {
                for (SafetensorsFile.TensorInfo t : f.tensors()) all.put(t.name(), single);
            }
            return all;
        }
        if (!Files.isRegularFile(index)) {
            List<String> found;
            try (Stream<Path> s = Files.list(dir)) {
                found = s.map(p -> p.getFileName().toString()).sorted().limit(10).toList();
            }
            throw new IOException(dir + ": no " + SINGLE_FILE + " and no " + INDEX + " (found " + found + "; only safetensors weights are read)");
        }
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(index));
        } catch (JsonProcessingException e) {
            throw new IOException(index + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new IOException(index + ": field 'weight_map': expected an object of tensor name to shard file, found " + map);
        }
        Map<String, Path> files = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            JsonNode shard = e.getValue();
            if (!shard.isTextual()) throw new IOException(index + ": weight_map['" + e.getKey() + "']: expected a file name, found " + shard);
            Path file = dir.resolve(shard.textValue()).normalize();
            if (!file.getParent().equals(dir.normalize()) || !file.getFileName().toString().endsWith(".safetensors")) {
                throw new IOException(index + ": weight_map['" + e.getKey() + "']: \"" + shard.textValue()
                        + "\" is not a .safetensors file in the checkpoint directory");
            }
            if (!Files.isRegularFile(file)) {
                throw new IOException(index + ": weight_map['" + e.getKey() + "'] names shard " + shard.textValue()
                        + ", which does not exist in " + dir);
            }
            files.put(e.getKey(), file);
        }
        return files;
    }
}
