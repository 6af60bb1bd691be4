package dev.moelora.cluster.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.cli.Jobs;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The expert-parallel runtime equals the single-process MoELoRA bit for bit on the CPU backend:
 * the same per-step losses, gradient norms and learning rates, and the same final tensors (gates,
 * heads, every expert's A and B). Tolerance: none; doubles and floats are compared by value with
 * {@code assertEquals}, which for these finite numbers means identical bits except for -0 vs 0.
 */
@Timeout(value = 15, unit = TimeUnit.MINUTES)
class ExpertParallelEquivalenceTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Path config(String name, String extra) throws IOException {
        Path file = dir.resolve(name + ".conf");
        Files.writeString(file, """
                adapter.type = moelora
                data.generated { train-per-task = 40, test-per-task = 8 }
                data.max-length = 24
                train { batch-size = 4, eval-batch-size = 8, warmup-steps = 2 }
                run { dir = "%s", name = %s }
                %s
                """.formatted(dir.toString().replace("\\", "/"), name, extra));
        return file;
    }

    private static JobResult train(Path file) throws IOException {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        return Jobs.run(RunConfig.load(file, List.of()), new PrintStream(log, true, StandardCharsets.UTF_8), false);
    }

    @Test
    void expertsOnTwoJvmsAndARouterJvmEqualTheSingleProcessRun() throws Exception {
        int steps = 20;
        JobResult single = train(config("single", "train.steps = " + steps));

        int coordinator = NodeProcesses.freeTcpPort();
        String seeds = "cluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + coordinator + "\"]";
        Path file = config("cluster", String.join("\n", "train.steps = " + steps, "runtime.mode = cluster", "runtime.routers = 1",
                "runtime.expert-nodes = 2", "runtime.timeout = 120s", "cluster.port = " + coordinator, seeds));
        try (NodeProcesses nodes = new NodeProcesses(dir)) {
            nodes.start(file, "router", "router", "1g");
            nodes.start(file, "expert", "expert-a", "1g");
            nodes.start(file, "expert", "expert-b", "1g");
            JobResult cluster = nodes.whileAlive(Duration.ofMinutes(6), () -> train(file));
            assertSameSteps(single.runDir(), cluster.runDir(), steps);
            assertSameRouting(single.runDir(), cluster.runDir(), steps);
            assertSameTensors(single.runDir(), cluster.runDir());
            assertEquals(single.scores(), cluster.scores(), "router 0's evaluation equals the single-process one");
            assertEquals(Map.of("router", 0, "expert-a", 0, "expert-b", 0), nodes.exitCodes(60),
                    "every node exits 0 after the run succeeded");
        }
    }

    @Test
    void twoRoutersWithAMicroBatchEachEqualOneRouterWithBothAndTheSingleProcessRun() throws Exception {
        String common = "train.steps = 6\ntrain.grad-accum = 2\ntrain.batch-size = 3\n";
        JobResult single = train(config("single-accum", common));
        JobResult one = train(config("one-router", common + "runtime.mode = local\nruntime.routers = 1\nruntime.expert-nodes = 2"));
        JobResult two = train(config("two-routers", common + "runtime.mode = local\nruntime.routers = 2\nruntime.expert-nodes = 3"));
        assertSameSteps(single.runDir(), one.runDir(), 6);
        assertSameSteps(single.runDir(), two.runDir(), 6);
        assertSameTensors(single.runDir(), one.runDir());
        assertSameTensors(single.runDir(), two.runDir());
        assertSameRouting(single.runDir(), two.runDir(), 6);
    }

    /**
     * adapter.capacity-factor 0.5 (each expert takes at most a quarter of a micro-batch's slots
     * with 8 experts and top-2): the runtime drops the same slots as the single-process run, so
     * steps, routing.jsonl (dropped_tokens included) and tensors are equal; slots really drop,
     * and the run differs from the dropless one.
     */
    @Test
    void withACapacityTheRuntimeDropsTheTokensTheSingleProcessRunDrops() throws Exception {
        String common = "train.steps = 4\ntrain.grad-accum = 2\ntrain.batch-size = 3\n";
        String capped = common + "adapter.capacity-factor = 0.5\n";
        JobResult dropless = train(config("dropless", common));
        JobResult single = train(config("single-capped", capped));
        JobResult two = train(config("two-routers-capped", capped + "runtime.mode = local\nruntime.routers = 2\nruntime.expert-nodes = 3"));
        assertSameSteps(single.runDir(), two.runDir(), 4);
        assertSameRouting(single.runDir(), two.runDir(), 4);
        assertSameTensors(single.runDir(), two.runDir());
        long dropped = 0;
        for (String line : Files.readAllLines(two.runDir().resolve("routing.jsonl"))) dropped += JSON.readTree(line).get("dropped_tokens").asLong();
        assertTrue(dropped > 0, "the capacity dropped slots");
        for (String line : Files.readAllLines(dropless.runDir().resolve("routing.jsonl"))) {
            assertEquals(0, JSON.readTree(line).get("dropped_tokens").asLong(), "dropless drops nothing");
        }
        assertNotEquals(losses(dropless.runDir()), losses(single.runDir()), "dropping slots changes the training");
        assertEquals(0.5, JSON.readTree(single.runDir().resolve("adapter/adapter_config.json").toFile()).get("capacity_factor").asDouble());
    }

    private static List<Double> losses(Path run) throws IOException {
        List<Double> out = new java.util.ArrayList<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) out.add(JSON.readTree(line).get("loss").asDouble());
        return out;
    }

    @Test
    void aNodeThatDiesBeforeTheRunStartsFailsTheWatchedRunInsteadOfHangingIt() throws Exception {
        Path file = config("early", "runtime.mode = cluster\nruntime.aeron-driver = no-such-driver");
        try (NodeProcesses nodes = new NodeProcesses(dir)) {
            nodes.start(file, "router", "early-router", "256m");
            long start = System.nanoTime();
            CompletableFuture<Void> never = new CompletableFuture<>();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> nodes.whileAlive(Duration.ofMinutes(2), () -> never.get()));
            assertTrue(e.getMessage().contains("early-router exited with 2") && e.getMessage().contains("runtime.aeron-driver"), e.getMessage());
            assertTrue(System.nanoTime() - start < 60e9, "noticed within a minute, not at the timeout");
        }
    }

    static void assertSameSteps(Path expectedRun, Path actualRun, int steps) throws IOException {
        List<String> expected = Files.readAllLines(expectedRun.resolve("metrics.jsonl"));
        List<String> actual = Files.readAllLines(actualRun.resolve("metrics.jsonl"));
        assertEquals(steps, expected.size());
        assertEquals(steps, actual.size());
        for (int i = 0; i < steps; i++) {
            JsonNode e = JSON.readTree(expected.get(i)), a = JSON.readTree(actual.get(i));
            for (String key : List.of("step", "loss", "aux_loss", "lr", "grad_norm", "tokens")) {
                assertEquals(e.get(key).asDouble(), a.get(key).asDouble(), 0.0, "step " + (i + 1) + " " + key);
            }
        }
    }

    /**
     * routing.jsonl of the two runs line for line: the same modules in the same order at every
     * step, every field equal (numbers compared exactly).
     */
    static void assertSameRouting(Path expectedRun, Path actualRun, int steps) throws IOException {
        List<String> expected = Files.readAllLines(expectedRun.resolve("routing.jsonl"));
        List<String> actual = Files.readAllLines(actualRun.resolve("routing.jsonl"));
        assertTrue(expected.size() >= steps && expected.size() % steps == 0, "one line per module and step: " + expected.size());
        assertEquals(expected.size(), actual.size());
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(JSON.readTree(expected.get(i)), JSON.readTree(actual.get(i)), "routing.jsonl line " + (i + 1));
        }
    }

    /** The final adapters hold the same tensors under the same names, bit for bit. */
    static void assertSameTensors(Path expectedRun, Path actualRun) throws IOException {
        Map<String, INDArray> expected = read(List.of(expectedRun.resolve("adapter/adapter_model.safetensors")));
        Map<String, INDArray> actual = read(List.of(actualRun.resolve("adapter/adapter_model.safetensors")));
        assertEquals(expected.keySet(), actual.keySet());
        assertTrue(expected.keySet().stream().anyMatch(n -> n.contains(".moe_A.")), "the experts' tensors are in the adapter: " + expected.keySet());
        for (String name : expected.keySet()) {
            assertArrayEquals(expected.get(name).shape(), actual.get(name).shape(), name);
            // exact: float arrays compare by bits (INDArray.equals would allow 1e-5)
            assertArrayEquals(expected.get(name).dup().data().asFloat(), actual.get(name).dup().data().asFloat(), name);
        }
    }

    static Map<String, INDArray> read(List<Path> files) throws IOException {
        Map<String, INDArray> out = new TreeMap<>();
        for (Path f : files) {
            try (SafetensorsFile s = Safetensors.open(f)) {
                for (SafetensorsFile.TensorInfo t : s.tensors()) out.put(t.name(), s.read(t.name()));
            }
        }
        return out;
    }
}
