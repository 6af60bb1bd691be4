package dev.moelora.model.llama;

import dev.moelora.model.adapter.Foldable;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Writes a Hugging Face LLaMA checkpoint directory whose weights have a decoder's adapters folded
 * in: {@code W' = W + ΔW} for every adapted projection (LoRA: {@code s B A}; Tied-LoRA:
 * {@code s diag(v_l) B diag(u_l) A}), computed in double from the base file's stored values and
 * rounded once to the tensor's stored dtype. Every weight file of the base is written again under
 * its own name with the same tensors, shapes, dtypes and metadata, so the index (copied) still
 * holds and {@code transformers} loads the result as it loads the base; config.json, the
 * tokenizer files and every other plain file are copied. Weights in other formats (.bin, .pt, ...)
 * and other safetensors files are not: they would not carry the merge.
 *
 * <p>An adapter that is not a fixed linear map (MoELoRA) cannot be folded and is refused. It never
 * writes into the base directory, nor into a directory that is not empty.
 */
public final class MergedCheckpoint {
    /** What was written: the merged tensors, the weight files written, the files copied and those left out. */
    public record Written(List<String> mergedTensors, List<String> weightFiles, List<String> copied, List<String> skipped) {}

    private static final Set<String> OTHER_WEIGHTS = Set.of(".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".safetensors");

    private MergedCheckpoint() {}

    /**
     * @param baseDir the checkpoint {@code adapted} was loaded from
     * @param adapted that checkpoint's decoder with adapters on some of its projections
     * @param outDir  a directory that does not exist or is empty
     */
    public static Written write(Path baseDir, LlamaDecoder adapted, Path outDir) throws IOException {
        Map<String, Foldable> folded = foldable(adapted);
        Map<String, Path> files = LlamaCheckpoint.weightFiles(baseDir);
        for (String name : folded.keySet()) {
            if (!files.containsKey(name)) throw new IOException(baseDir + ": no tensor '" + name + "' to fold the adapter into (is it the checkpoint the decoder was loaded from?)");
        }
        if (Files.exists(outDir)) {
            if (!Files.isDirectory(outDir)) throw new IOException(outDir + ": exists and is not a directory");
            if (Files.isSameFile(outDir, baseDir)) throw new IOException(outDir + ": is the base checkpoint itself; merge into another directory");
            try (Stream<Path> s = Files.list(outDir)) {
                if (s.findAny().isPresent()) throw new IOException(outDir + ": is not empty; merge into a new or empty directory");
            }
        }
        Files.createDirectories(outDir);
        Set<Path> weightFiles = new TreeSet<>(files.values());
        Set<String> weightNames = new TreeSet<>();
        for (Path p : weightFiles) weightNames.add(p.getFileName().toString());
        List<String> merged = new ArrayList<>(), written = new ArrayList<>(), copied = new ArrayList<>(), skipped = new ArrayList<>();
        for (Path file : weightFiles) {
            try (SafetensorsFile f = Safetensors.open(file)) {
                List<Safetensors.Entry> entries = new ArrayList<>();
                for (SafetensorsFile.TensorInfo t : f.tensors()) {
                    Foldable adapter = folded.get(t.name());
                    if (adapter != null) merged.add(t.name());
                    // one tensor in memory at a time: ΔW is computed when the writer reaches its weight
                    entries.add(new Safetensors.Entry(t.name(), stored(file, t), t.shape(), () -> adapter == null ? f.read(t.name())
                            : f.read(t.name()).castTo(DataType.DOUBLE).addi(adapter.weightDelta())));
                }
                Safetensors.write(outDir.resolve(file.getFileName()), entries, f.metadata());
                written.add(file.getFileName().toString());
            }
        }
        try (Stream<Path> s = Files.list(baseDir)) {
            for (Path p : s.sorted().toList()) {
                String name = p.getFileName().toString();
                if (weightNames.contains(name)) continue;
                if (!Files.isRegularFile(p)) {
                    skipped.add(name + "/");
                    continue;
                }
                if (OTHER_WEIGHTS.stream().anyMatch(name::endsWith)) {
                    skipped.add(name);
                    continue;
                }
                Files.copy(p, outDir.resolve(name));
                copied.add(name);
            }
        }
        return new Written(merged, written, copied, skipped);
    }

    /**
     * Every adapted projection by the name of the weight its ΔW folds into; an adapter that is not
     * {@link Foldable} is an error naming the module.
     */
    private static Map<String, Foldable> foldable(LlamaDecoder adapted) {
        Map<String, Foldable> out = new LinkedHashMap<>();
        for (Linear l : adapted.linears()) {
            if (l instanceof FrozenLinear) continue;
            if (!(l instanceof Foldable f) || !(f.base() instanceof FrozenLinear)) {
                throw new IllegalArgumentException(l.name() + ": its adapter (" + l.getClass().getSimpleName() + ") cannot be folded into the frozen "
                        + "weight: only LoRA and Tied-LoRA are fixed linear maps. MoELoRA mixes its experts token by token (each token's router "
                        + "picks its own top-k), so no single W' equals it; use the adapter directory as it is (--adapter)");
            }
            out.put(l.name() + ".weight", f);
        }
        return out;
    }

    private static String stored(Path file, SafetensorsFile.TensorInfo t) throws IOException {
        if (!Set.of("F32", "F16", "BF16", "F64").contains(t.dtype())) {
            throw new IOException(file + ": tensor '" + t.name() + "' is " + t.dtype() + "; a merged checkpoint is written in F32, F16, BF16 or F64");
        }
        return t.dtype();
    }
}
