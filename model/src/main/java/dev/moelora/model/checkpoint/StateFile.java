package dev.moelora.model.checkpoint;

import dev.moelora.model.files.DurableFiles;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The state files of a checkpoint: what a run must keep to continue exactly where it stood. One
 * safetensors file per MoELoRA expert ({@code expert-<e>.safetensors}: A and B of that expert in
 * every adapted module, {@code <module>.moe_A.<e>} and {@code <module>.moe_B.<e>}) and one for
 * everything else ({@code trunk.safetensors}: gates, task heads, LoRA and Tied-LoRA tensors).
 * Each tensor is stored under its single-process parameter name with its AdamW moments beside it
 * ({@code <name>.exp_avg}, {@code <name>.exp_avg_sq}); the optimizer's step count is in the
 * header's metadata. So the node that hosts an expert writes and reads its own file, and a
 * checkpoint written by the expert-parallel runtime loads single-process and the other way round.
 *
 * <p>A file is read only after its size and SHA-256 match what the manifest says; then every
 * tensor name, shape and dtype is checked before any parameter changes. It knows nothing of
 * manifests, directories of steps or nodes: those are the caller's.
 */
public final class StateFile {
    /** The file of every parameter that belongs to no expert. */
    public static final String TRUNK = "trunk.safetensors";
    public static final String FIRST_MOMENT = ".exp_avg";
    public static final String SECOND_MOMENT = ".exp_avg_sq";
    static final String FORMAT = "moelora-state";
    static final String STEPS = "optimizer_steps";
    /** MoeLora.aName / bName: {@code <module>.moe_A.<e>}, {@code <module>.moe_B.<e>}. */
    private static final Pattern EXPERT_TENSOR = Pattern.compile(".+\\.moe_[AB]\\.(\\d+)");

    private StateFile() {}

    /** The file of expert {@code e}. */
    public static String expertFile(int e) {
        return "expert-" + e + ".safetensors";
    }

    /** The expert a parameter belongs to, from its name; empty for trunk parameters (gates, heads, dense adapters). */
    public static OptionalInt expertOf(String parameterName) {
        Matcher m = EXPERT_TENSOR.matcher(parameterName);
        return m.matches() ? OptionalInt.of(Integer.parseInt(m.group(1))) : OptionalInt.empty();
    }

    /** The state file a parameter is stored in. */
    public static String fileOf(String parameterName) {
        OptionalInt e = expertOf(parameterName);
        return e.isPresent() ? expertFile(e.getAsInt()) : TRUNK;
    }

    /**
     * The parameters of each state file, in their given order: the trunk file first (when any
     * parameter belongs to it), then the experts' in expert order.
     */
    public static Map<String, List<Parameter>> split(List<Parameter> params) {
        Map<String, List<Parameter>> trunk = new LinkedHashMap<>();
        Map<Integer, List<Parameter>> experts = new TreeMap<>();
        for (Parameter p : params) {
            OptionalInt e = expertOf(p.name());
            if (e.isPresent()) experts.computeIfAbsent(e.getAsInt(), k -> new ArrayList<>()).add(p);
            else trunk.computeIfAbsent(TRUNK, k -> new ArrayList<>()).add(p);
        }
        Map<String, List<Parameter>> out = new LinkedHashMap<>(trunk);
        experts.forEach((e, ps) -> out.put(expertFile(e), ps));
        return out;
    }

    /**
     * Writes {@code params}, their moments and {@code optimizerSteps} as {@code file}: under a
     * temporary name in the same directory, forced to disk, renamed atomically, the directory
     * forced. {@code moments} may hold other parameters' moments too (pass an optimizer's whole
     * list); every parameter of {@code params} must have its own.
     *
     * @return the digest of the file as written, for the manifest
     */
    public static FileDigest write(Path file, List<Parameter> params, List<AdamW.Moment> moments, long optimizerSteps) throws IOException {
        Map<String, AdamW.Moment> byParameter = new HashMap<>();
        for (AdamW.Moment m : moments) byParameter.put(m.parameter(), m);
        Map<String, INDArray> tensors = new TreeMap<>();
        for (Parameter p : params) {
            AdamW.Moment m = byParameter.get(p.name());
            if (m == null) throw new IllegalArgumentException(file + ": no AdamW moments for parameter '" + p.name() + "'");
            if (tensors.put(p.name(), p.value()) != null) throw new IllegalArgumentException(file + ": parameter '" + p.name() + "' twice");
            tensors.put(p.name() + FIRST_MOMENT, m.first());
            tensors.put(p.name() + SECOND_MOMENT, m.second());
        }
        java.nio.file.Files.createDirectories(file.toAbsolutePath().getParent());
        Safetensors.write(file, tensors, Map.of("format", FORMAT, STEPS, Long.toString(optimizerSteps)));
        return FileDigest.of(file);
    }

    /**
     * Reads {@code file} into {@code params} (values assigned in place) and their moments into
     * {@code firstMoments} / {@code secondMoments} (by parameter name), after checking its size
     * and SHA-256 against {@code expected} and that it holds exactly these parameters and their
     * moments with their shapes and dtype. Nothing is assigned when a check fails; the message
     * names the file and what is wrong.
     *
     * @return the optimizer step count the file was written at
     */
    public static long read(Path file, FileDigest expected, List<Parameter> params, Map<String, INDArray> firstMoments,
                            Map<String, INDArray> secondMoments) throws IOException {
        expected.verify(file);
        try (SafetensorsFile f = Safetensors.open(file)) {
            Map<String, SafetensorsFile.TensorInfo> stored = new LinkedHashMap<>();
            for (SafetensorsFile.TensorInfo t : f.tensors()) stored.put(t.name(), t);
            Set<String> wanted = new LinkedHashSet<>();
            for (Parameter p : params) {
                for (String name : List.of(p.name(), p.name() + FIRST_MOMENT, p.name() + SECOND_MOMENT)) {
                    wanted.add(name);
                    SafetensorsFile.TensorInfo t = stored.get(name);
                    if (t == null) throw new IOException(file + ": no tensor '" + name + "' (written for another model, targets or experts?)");
                    if (!Arrays.equals(t.shape(), p.value().shape())) {
                        throw new IOException(file + ": tensor '" + name + "' has shape " + Arrays.toString(t.shape()) + ", this run expects "
                                + Arrays.toString(p.value().shape()));
                    }
                    String dtype = dtype(p.value().dataType());
                    if (!t.dtype().equals(dtype)) {
                        throw new IOException(file + ": tensor '" + name + "' is " + t.dtype() + ", this run trains " + dtype);
                    }
                }
            }
            Set<String> unexpected = new TreeSet<>(stored.keySet());
            unexpected.removeAll(wanted);
            if (!unexpected.isEmpty()) {
                throw new IOException(file + ": tensors this run does not train: " + String.join(", ", unexpected));
            }
            long steps = optimizerSteps(file, f);
            for (Parameter p : params) {
                p.value().assign(f.read(p.name()));
                firstMoments.put(p.name(), f.read(p.name() + FIRST_MOMENT));
                secondMoments.put(p.name(), f.read(p.name() + SECOND_MOMENT));
            }
            return steps;
        }
    }

    /** The parameter tensors alone (no moments) of {@code file}, by name, after checking its size and SHA-256. */
    public static Map<String, INDArray> readParameters(Path file, FileDigest expected) throws IOException {
        expected.verify(file);
        Map<String, INDArray> out = new TreeMap<>();
        try (SafetensorsFile f = Safetensors.open(file)) {
            optimizerSteps(file, f);
            for (SafetensorsFile.TensorInfo t : f.tensors()) {
                if (t.name().endsWith(FIRST_MOMENT) || t.name().endsWith(SECOND_MOMENT)) continue;
                out.put(t.name(), f.read(t.name()));
            }
        }
        return out;
    }

    /** Writes the state of every parameter into {@code dir}, one file per {@link #split} entry; returns their digests in that order. */
    public static List<FileDigest> writeAll(Path dir, List<Parameter> params, AdamW optimizer) throws IOException {
        List<FileDigest> out = new ArrayList<>();
        for (Map.Entry<String, List<Parameter>> e : split(params).entrySet()) {
            out.add(write(dir.resolve(e.getKey()), e.getValue(), optimizer.moments(), optimizer.steps()));
        }
        return out;
    }

    /**
     * Restores every parameter and {@code optimizer} from the state files {@code files} of
     * {@code dir}: they must be exactly the files this run's parameters split into, each verified,
     * and agree on the optimizer's step count.
     *
     * @return the optimizer step count restored
     */
    public static long readAll(Path dir, List<FileDigest> files, List<Parameter> params, AdamW optimizer) throws IOException {
        Map<String, List<Parameter>> split = split(params);
        Map<String, FileDigest> listed = new LinkedHashMap<>();
        for (FileDigest d : files) listed.put(d.name(), d);
        for (String name : listed.keySet()) {
            if (!split.containsKey(name)) {
                throw new IOException(dir.resolve(name) + ": holds tensors no parameter of this run belongs to (this run's state files: "
                        + String.join(", ", split.keySet()) + ")");
            }
        }
        Map<String, INDArray> first = new HashMap<>(), second = new HashMap<>();
        Long steps = null;
        String stepsFrom = null;
        for (Map.Entry<String, List<Parameter>> e : split.entrySet()) {
            FileDigest d = listed.get(e.getKey());
            if (d == null) throw new IOException(dir + ": no " + e.getKey() + " (this run trains " + e.getValue().get(0).name() + " ...)");
            long s = read(dir.resolve(e.getKey()), d, e.getValue(), first, second);
            if (steps != null && s != steps) {
                throw new IOException(dir.resolve(e.getKey()) + ": written at optimizer step " + s + ", " + stepsFrom + " at " + steps);
            }
            steps = s;
            stepsFrom = e.getKey();
        }
        long restored = steps == null ? 0 : steps;
        optimizer.restore(restored, first, second);
        return restored;
    }

    private static long optimizerSteps(Path file, SafetensorsFile f) throws IOException {
        String format = f.metadata().get("format");
        if (!FORMAT.equals(format)) throw new IOException(file + ": metadata 'format' is " + format + ", expected '" + FORMAT + "'");
        String steps = f.metadata().get(STEPS);
        try {
            long s = Long.parseLong(String.valueOf(steps));
            if (s < 0) throw new NumberFormatException();
            return s;
        } catch (NumberFormatException e) {
            throw new IOException(file + ": metadata '" + STEPS + "' must be a non-negative integer, found " + steps, e);
        }
    }

    private static String dtype(DataType type) {
        return switch (type) {
            case FLOAT -> "F32";
            case DOUBLE -> "F64";
            default -> throw new IllegalArgumentException("state files hold FLOAT or DOUBLE parameters, not " + type);
        };
    }
}
