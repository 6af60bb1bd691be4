package dev.moelora.cluster.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.Preemption;
import dev.moelora.cluster.single.EncoderJob;
import dev.moelora.cluster.single.InstructionJob;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Tiny single-process runs for the checkpoint tests: LoRA and MoELoRA on MiniLM over a few
 * generated examples, LoRA on the tiny golden LLaMA checkpoint over a few instructions; a
 * simulated kill at a chosen step; and the comparisons of "bit for bit" (record lines without
 * their wall-clock fields, adapter tensors by their float bits and the files by their bytes).
 */
final class TinyRuns {
    static final Path GOLDEN_LLAMA = Path.of("../model/src/test/resources/llama/gqa-f32");
    static final int STEPS = 8;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a run wrote to stdout and where. */
    record Run(Path runDir, String log) {}

    /** Thrown from a preemption condition: the process "dies" at a step boundary without a checkpoint. */
    static final class Killed extends RuntimeException {
        Killed(int steps) {
            super("simulated kill after step " + steps);
        }
    }

    private TinyRuns() {}

    /**
     * Settings of a tiny run {@code <root>/<name>} of {@code family} (lora, moelora on the encoder;
     * llama-lora on the decoder, its instructions beside {@code root}) with checkpoints every 2 steps.
     */
    static List<String> settings(String family, Path root, String name) throws IOException {
        List<String> s = new ArrayList<>(List.of("train.steps=" + STEPS, "train.grad-accum=2", "train.warmup-steps=1",
                "checkpoint.every=2", "run.dir=" + root, "run.name=" + name));
        switch (family) {
            case "lora", "moelora" -> {
                s.addAll(List.of("data.generated.train-per-task=6", "data.generated.test-per-task=2", "data.max-length=16",
                        "train.batch-size=2", "train.eval-batch-size=4", "adapter.type=" + family));
                if (family.equals("moelora")) s.addAll(List.of("adapter.experts=4", "adapter.top-k=2"));
            }
            case "llama-lora" -> {
                Path train = root.toAbsolutePath().getParent().resolve("instructions.json"); // one file for every run of a test
                if (!Files.exists(train)) {
                    Files.createDirectories(train.getParent());
                    Files.writeString(train, instructions(12));
                }
                s.addAll(List.of("model.name=llama", "model.path=" + GOLDEN_LLAMA, "data.source=instructions",
                        "data.instructions.file=" + train, "data.instructions.max-length=32", "data.instructions.eval-tasks=[]",
                        "train.batch-size=2", "adapter.type=lora", "adapter.targets=[q_proj,v_proj,down_proj]", "adapter.dropout=0.1"));
            }
            default -> throw new IllegalArgumentException(family);
        }
        return s;
    }

    /** Sums of two digits in LLM-Adapters' JSON. */
    static String instructions(int n) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < n; i++) {
            int a = i % 7 + 1, b = (i * 3) % 5 + 2;
            if (i > 0) sb.append(",\n");
            sb.append(String.format("{\"instruction\": \"What is %d + %d?\", \"input\": \"\", \"output\": \"%d + %d = %d\", \"answer\": \"%d\"}",
                    a, b, a, b, a + b, a + b));
        }
        return sb.append("]").toString();
    }

    static Run run(String family, List<String> settings, Supplier<Preemption> preemption) throws IOException {
        RunConfig config = RunConfig.load(null, settings);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
        try {
            if (family.startsWith("llama")) InstructionJob.run(config, out, false, preemption);
            else EncoderJob.run(config, out, false, preemption);
        } finally {
            out.flush();
        }
        String name = config.string("run.name");
        return new Run(Path.of(config.string("run.dir")).resolve(name), log.toString(StandardCharsets.UTF_8));
    }

    /** A run that dies at the first step boundary after {@code steps} steps, with no checkpoint there (metrics.jsonl has those steps). */
    static Run killedAfter(String family, List<String> settings, int steps) throws IOException {
        RunConfig config = RunConfig.load(null, settings);
        Path metrics = Path.of(config.string("run.dir")).resolve(config.string("run.name")).resolve("metrics.jsonl");
        try {
            run(family, settings, () -> Preemption.when(() -> {
                if (lines(metrics).size() >= steps) throw new Killed(steps);
                return false;
            }));
        } catch (Killed expected) {
            return new Run(metrics.getParent(), expected.getMessage());
        }
        throw new AssertionError("the run was not killed after step " + steps);
    }

    static List<String> lines(Path file) {
        try {
            return Files.isRegularFile(file) ? Files.readAllLines(file) : List.of();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** metrics.jsonl lines without their wall-clock fields (seconds, tokens_per_s): what must be identical. */
    static List<String> metrics(Path runDir) throws IOException {
        List<String> out = new ArrayList<>();
        for (String line : lines(runDir.resolve("metrics.jsonl"))) {
            ObjectNode o = (ObjectNode) JSON.readTree(line);
            o.remove("seconds");
            o.remove("tokens_per_s");
            out.add(o.toString());
        }
        return out;
    }

    /** Both runs' adapters hold the same tensors with the same float bits, in byte-identical files. */
    static void assertSameAdapter(Path expectedRun, Path actualRun) throws IOException {
        Path a = expectedRun.resolve("adapter/adapter_model.safetensors"), b = actualRun.resolve("adapter/adapter_model.safetensors");
        try (SafetensorsFile fa = Safetensors.open(a); SafetensorsFile fb = Safetensors.open(b)) {
            assertEquals(fa.tensors().stream().map(SafetensorsFile.TensorInfo::name).toList(),
                    fb.tensors().stream().map(SafetensorsFile.TensorInfo::name).toList(), "tensor names");
            for (SafetensorsFile.TensorInfo t : fa.tensors()) {
                assertArrayEquals(bits(fa.read(t.name())), bits(fb.read(t.name())), "float bits of " + t.name());
            }
        }
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b), "adapter_model.safetensors bytes");
        assertEquals(Files.readString(expectedRun.resolve("adapter/adapter_config.json")),
                Files.readString(actualRun.resolve("adapter/adapter_config.json")));
    }

    static int[] bits(INDArray a) {
        float[] f = a.dup('c').data().asFloat();
        int[] out = new int[f.length];
        for (int i = 0; i < f.length; i++) out[i] = Float.floatToRawIntBits(f[i]);
        return out;
    }

    /** Copies a run directory tree (a killed run's state) so several resumes can start from the same state. */
    static void copyTree(Path from, Path to) throws IOException {
        try (var walk = Files.walk(from)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(target);
                else Files.copy(p, target);
            }
        }
    }
}
