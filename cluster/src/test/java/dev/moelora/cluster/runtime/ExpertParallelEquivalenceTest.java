package dev.moelora.cluster.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
            assertSameTensors(single.runDir(), cluster.runDir(), 8);
            assertEquals(single.scores(), cluster.scores(), "router 0's evaluation equals the single-process one");
            assertEquals(Map.of("router", 0, "expert-a", 0, "expert-b", 0), nodes.exitCodes(60),
                    "every node exits 0 after the run succeeded");
        }
    }

    @Test
    void anExpertNodeThatDiesFailsTheRunWithAMessageNamingIt() throws Exception {
        int coordinator = NodeProcesses.freeTcpPort();
        Path file = config("lost", String.join("\n", "train.steps = 40", "runtime.mode = cluster", "runtime.expert-nodes = 2",
                "runtime.timeout = 60s", "runtime.frame-timeout = 20s", "cluster.port = " + coordinator,
                "cluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + coordinator + "\"]"));
        try (NodeProcesses nodes = new NodeProcesses(dir)) {
            nodes.start(file, "router", "lost-router", "1g");
            nodes.start(file, "expert", "lost-expert-a", "1g");
            NodeProcesses.Node victim = nodes.start(file, "expert", "lost-expert-b", "1g");
            Path metrics = dir.resolve("lost/metrics.jsonl");
            // kills the victim once two steps are written; its own failure (or a run that never gets there) fails the test
            CompletableFuture<Void> killer = CompletableFuture.runAsync(() -> {
                long deadline = System.nanoTime() + 240_000_000_000L;
                try {
                    while (!Files.exists(metrics) || Files.readAllLines(metrics).size() < 2) {
                        if (System.nanoTime() > deadline) throw new IllegalStateException("no two steps within 240 s");
                        Thread.sleep(100);
                    }
                    victim.process().destroyForcibly();
                } catch (IOException | InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            long start = System.nanoTime();
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> nodes.whileAlive(Duration.ofMinutes(5), () -> train(file), victim.process()));
            try {
                killer.get(10, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException notKilled) {
                throw new AssertionError("the run failed before the expert was killed: " + e.getMessage(), e);
            }
            assertTrue(e.getMessage().contains("127.0.0.1:" + victim.dataPort()) || e.getMessage().contains("127.0.0.1:" + victim.controlPort()),
                    "the error names the lost node: " + e.getMessage());
            assertTrue(System.nanoTime() - start < 120e9, "the run failed instead of hanging");
            Map<String, Integer> exits = nodes.exitCodes(60);
            assertEquals(1, exits.get("lost-router"), "a node of a failed run exits 1: " + exits);
            assertEquals(1, exits.get("lost-expert-a"), "a node of a failed run exits 1: " + exits);
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
        assertSameTensors(single.runDir(), one.runDir(), 8);
        assertSameTensors(single.runDir(), two.runDir(), 8);
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

    /** Every tensor the single-process run saved equals the one a router or an expert saved. */
    static void assertSameTensors(Path expectedRun, Path actualRun, int experts) throws IOException {
        Map<String, INDArray> expected = read(List.of(expectedRun.resolve("adapter/adapter.safetensors")));
        List<Path> files;
        try (Stream<Path> s = Files.list(actualRun.resolve("adapter"))) {
            files = s.filter(p -> p.getFileName().toString().matches("(router-0|expert-\\d+)\\.safetensors")).sorted().toList();
        }
        assertEquals(1 + experts, files.size(), "router 0 and every expert save a file: " + files);
        Map<String, INDArray> actual = read(files);
        assertEquals(expected.keySet(), actual.keySet());
        for (String name : expected.keySet()) {
            assertArrayEquals(expected.get(name).shape(), actual.get(name).shape(), name);
            // exact: float arrays compare by bits (INDArray.equals would allow 1e-5)
            assertArrayEquals(expected.get(name).dup().data().asFloat(), actual.get(name).dup().data().asFloat(), name);
        }
    }

    private static Map<String, INDArray> read(List<Path> files) throws IOException {
        Map<String, INDArray> out = new TreeMap<>();
        for (Path f : files) {
            try (SafetensorsFile s = Safetensors.open(f)) {
                for (SafetensorsFile.TensorInfo t : s.tensors()) out.put(t.name(), s.read(t.name()));
            }
        }
        return out;
    }
}
