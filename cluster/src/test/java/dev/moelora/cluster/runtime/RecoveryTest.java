package dev.moelora.cluster.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.chaos.ChaosRun;
import dev.moelora.cluster.cli.Jobs;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.JobResult;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Long runs survive what kills them, and finish with exactly what an uninterrupted run gives: the
 * same loss at every step (metrics.jsonl, compared exactly) and the same final adapter, bit for bit.
 * Real JVMs on 127.0.0.1 (a router, expert nodes, and in one test the coordinator), Pekko Cluster
 * with automatic downing, Aeron UDP, checkpoints every 5 steps in the run directory every JVM sees.
 * The reference is the single-process run of the same settings. Each test watches its JVMs: one
 * that fails unexpectedly fails the test at once, and every test has a timeout.
 */
@Timeout(value = 20, unit = TimeUnit.MINUTES)
class RecoveryTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final int STEPS = 30;

    @TempDir
    static Path shared;
    static JobResult reference;

    @TempDir
    Path dir;

    /** The settings every run here shares: the chaos run's, with a few restarts allowed. */
    static String settings(Path runs, String name, int steps, String extra) {
        return ChaosRun.settings(runs, name, steps, 4) + extra + "\n";
    }

    static Path write(Path runs, String name, int steps, String extra) throws IOException {
        Path file = runs.resolve(name + ".conf");
        Files.writeString(file, settings(runs, name, steps, extra));
        return file;
    }

    static JobResult train(Path file, List<String> overrides) throws IOException {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        return Jobs.run(RunConfig.load(file, overrides), new PrintStream(log, true, StandardCharsets.UTF_8), false);
    }

    @BeforeAll
    static void uninterrupted() throws IOException {
        reference = train(write(shared, "reference", STEPS, ""), List.of());
    }

    /** A cluster run's settings: this test's coordinator port as the one seed node. */
    private Path clusterRun(String name, int steps, int coordinator, int expertNodes, String extra) throws IOException {
        return write(dir, name, steps, String.join("\n", "runtime.mode = cluster", "runtime.routers = 1", "runtime.expert-nodes = " + expertNodes,
                "cluster.port = " + coordinator, "cluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + coordinator + "\"]", extra));
    }

    /** Runs {@code action} once the run's metrics.jsonl has reached {@code step} lines; its failure (or a run that never gets there) is the caller's. */
    private static CompletableFuture<Void> atStep(Path runDir, int step, ThrowingRunnable action) {
        Path metrics = runDir.resolve("metrics.jsonl");
        return CompletableFuture.runAsync(() -> {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(8);
            try {
                while (!Files.exists(metrics) || Files.readAllLines(metrics).size() < step) {
                    if (System.nanoTime() > deadline) throw new IllegalStateException("the run never reached step " + step);
                    Thread.sleep(50);
                }
                action.run();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    /** The recovered run equals the uninterrupted one: every step's numbers, the final adapter. */
    static void assertSameAsUninterrupted(JobResult reference, Path runDir, int steps) throws IOException {
        ExpertParallelEquivalenceTest.assertSameSteps(reference.runDir(), runDir, steps);
        ExpertParallelEquivalenceTest.assertSameTensors(reference.runDir(), runDir);
    }

    /** Polls placement.json until the node whose name ends with {@code node} has {@code health}; false after two minutes. */
    static boolean health(Path runDir, String node, String health) {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
        while (System.nanoTime() < deadline) {
            try {
                for (JsonNode n : JSON.readTree(runDir.resolve("placement.json").toFile()).get("nodes")) {
                    if (n.get("node").asText().endsWith(node) && n.get("health").asText().equals(health)) return true;
                }
            } catch (IOException e) {
                // not written yet: look again
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return false;
    }

    static List<JsonNode> events(Path runDir, String event) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(runDir.resolve("events.jsonl"))) {
            JsonNode n = JSON.readTree(line);
            if (n.get("event").asText().equals(event)) out.add(n);
        }
        return out;
    }

    @Test
    void anExpertJvmKilledMidRunIsRecoveredOnTheSurvivorAndTheRunEqualsTheUninterruptedOne() throws Exception {
        int coordinator = NodeProcesses.freeTcpPort();
        Path file = clusterRun("expert-killed", STEPS, coordinator, 2, "recovery.wait-for-replacement = 2s"); // no replacement comes
        try (NodeProcesses nodes = new NodeProcesses(dir)) {
            nodes.start(file, "router", "router", "1g");
            nodes.start(file, "expert", "expert-a", "1g");
            NodeProcesses.Node victim = nodes.start(file, "expert", "expert-b", "1g");
            CompletableFuture<Void> kill = atStep(dir.resolve("expert-killed"), 12, () -> nodes.kill(victim));
            CompletableFuture<Boolean> sawUnreachable = kill.thenApplyAsync(v -> health(dir.resolve("expert-killed"), ":" + victim.dataPort(), "unreachable"));
            JobResult run = nodes.whileAlive(Duration.ofMinutes(10), () -> train(file, List.of()));
            kill.get(10, TimeUnit.SECONDS);
            assertSameAsUninterrupted(reference, run.runDir(), STEPS);
            List<JsonNode> lost = events(run.runDir(), "node-lost");
            assertEquals(1, lost.size(), "one node lost: " + lost);
            assertTrue(lost.get(0).get("node").asText().endsWith(":" + victim.dataPort()), lost.toString());
            JsonNode recovered = events(run.runDir(), "recovered").get(0);
            assertEquals(10, recovered.get("step").asInt(), "the checkpoint of step 10, the last before the kill: " + recovered);
            assertTrue(recovered.get("checkpoint").asText().endsWith("step-000010") && recovered.get("seconds").asDouble() > 0, recovered.toString());
            assertTrue(sawUnreachable.get(10, TimeUnit.SECONDS), "placement.json showed the killed node unreachable during the run");
            assertEquals(Map.of("router", 0, "expert-a", 0, "expert-b", 137), nodes.exitCodes(60));
        }
    }

    @Test
    void theRouterJvmKilledMidRunIsReplacedByASpareRouterAndTheRunEqualsTheUninterruptedOne() throws Exception {
        int coordinator = NodeProcesses.freeTcpPort();
        Path file = clusterRun("router-killed", STEPS, coordinator, 2, "");
        try (NodeProcesses nodes = new NodeProcesses(dir)) {
            NodeProcesses.Node victim = nodes.start(file, "router", "router", "1g");
            nodes.start(file, "expert", "expert-a", "1g");
            nodes.start(file, "expert", "expert-b", "1g");
            CompletableFuture<Void> kill = atStep(dir.resolve("router-killed"), 8, () -> {
                nodes.kill(victim);
                nodes.start(file, "router", "replacement-router", "1g"); // joins the cluster as the lost router's replacement
            });
            JobResult run = nodes.whileAlive(Duration.ofMinutes(10), () -> train(file, List.of()));
            kill.get(10, TimeUnit.SECONDS);
            assertSameAsUninterrupted(reference, run.runDir(), STEPS);
            assertTrue(events(run.runDir(), "node-up").stream().anyMatch(e -> e.get("reason").asText().contains("replacement")),
                    "the new router joined as a replacement");
            assertEquals(5, events(run.runDir(), "recovered").get(0).get("step").asInt());
        }
    }

    @Test
    void theCoordinatorKilledAndStartedAgainContinuesFromLatestWithTheNodesThatStayedUp() throws Exception {
        int coordinator = NodeProcesses.freeTcpPort();
        Path file = clusterRun("coordinator-killed", STEPS, coordinator, 2, "");
        Path runDir = dir.resolve("coordinator-killed");
        try (NodeProcesses nodes = new NodeProcesses(dir)) {
            NodeProcesses.Node first = nodes.start(file, "coordinator", "coordinator", "1g", coordinator, List.of());
            nodes.start(file, "router", "router", "1g");
            nodes.start(file, "expert", "expert-a", "1g");
            nodes.start(file, "expert", "expert-b", "1g");
            NodeProcesses.Node[] second = new NodeProcesses.Node[1];
            CompletableFuture<Void> restart = atStep(runDir, 13, () -> {
                nodes.kill(first);
                second[0] = nodes.start(file, "coordinator", "coordinator-again", "1g", coordinator, List.of("run.resume-from=latest"));
            });
            nodes.whileAlive(Duration.ofMinutes(10), () -> {
                restart.get(9, TimeUnit.MINUTES);
                return second[0].process().waitFor(9, TimeUnit.MINUTES);
            });
            assertEquals(0, second[0].process().exitValue(), nodes.tail("coordinator-again", 40));
            assertSameAsUninterrupted(reference, runDir, STEPS);
            assertEquals(10, events(runDir, "resumed").get(0).get("step").asInt(), "the second coordinator resumed the checkpoint of step 10");
            Map<String, Integer> exits = nodes.exitCodes(60);
            assertEquals(0, exits.get("router"), "the router stayed up and served the second coordinator: " + exits);
            assertEquals(0, exits.get("expert-a"), exits.toString());
            assertEquals(0, exits.get("expert-b"), exits.toString());
        }
    }

    /**
     * The short chaos run (`./moelora chaos` is the long one, same code): three expert JVMs and a
     * router, 60 steps, three kills of random nodes (seeded) at random steps, each victim replaced
     * by a new JVM of its role: the same losses and final tensors as the uninterrupted run.
     */
    @Test
    void threeRandomKillsDuringASixtyStepRunLeaveTheResultOfTheUninterruptedRun() throws Exception {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        ChaosRun.Verdict v = ChaosRun.run(dir.resolve("chaos-work"), 60, 3, 3, 20261201, new PrintStream(log, true, StandardCharsets.UTF_8));
        String said = log.toString(StandardCharsets.UTF_8);
        assertEquals(3, v.kills().size(), said);
        assertTrue(v.identical(), v.difference() + "\n" + said);
        assertEquals(3, events(dir.resolve("chaos-work/chaos"), "node-lost").size(), said);
        assertTrue(v.recoveries() >= 3, said);
    }
}
