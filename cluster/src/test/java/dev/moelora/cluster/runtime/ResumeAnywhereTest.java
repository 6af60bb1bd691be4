package dev.moelora.cluster.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.job.Preemption;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Placement is not part of the state: a checkpoint written by a run with two expert nodes resumes
 * on three (real JVMs) and on one (in this JVM), and either way the run ends with the losses and
 * the adapter of the uninterrupted run; a corrupted latest checkpoint is reported by its file and
 * the run falls back to the previous one, still ending identical.
 */
@Timeout(value = 15, unit = TimeUnit.MINUTES)
class ResumeAnywhereTest {
    static final int STEPS = 20;

    @TempDir
    static Path shared;
    static JobResult reference;
    /** A run with two expert nodes stopped (preempted) after step 12: checkpoints of steps 5, 10 and 12. */
    static Path stopped;

    @TempDir
    Path dir;

    @BeforeAll
    static void referenceAndAStoppedRun() throws Exception {
        reference = RecoveryTest.train(RecoveryTest.write(shared, "reference", STEPS, ""), List.of());
        Path file = RecoveryTest.write(shared, "two-nodes", STEPS, "runtime { mode = local, expert-nodes = 2 }");
        Path metrics = shared.resolve("two-nodes/metrics.jsonl");
        JobResult partial = ExpertParallelJob.run(RunConfig.load(file, List.of()), quiet(), false,
                () -> Preemption.when(() -> lines(metrics) >= 12));
        assertTrue(partial.losses().size() >= 12 && partial.losses().size() < STEPS, "stopped early: " + partial.losses().size() + " steps");
        stopped = partial.runDir();
    }

    static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    }

    static int lines(Path file) {
        try {
            return Files.exists(file) ? Files.readAllLines(file).size() : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** A copy of the stopped run under this test's directory, with its settings re-pointed there. */
    private Path copy(String name) throws IOException {
        Path to = dir.resolve(name);
        try (Stream<Path> files = Files.walk(stopped)) {
            for (Path p : files.toList()) {
                Path t = to.resolve(stopped.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(t);
                else Files.copy(p, t);
            }
        }
        return to;
    }

    private static List<String> resumeIn(Path runDir, String... settings) {
        List<String> all = new java.util.ArrayList<>(List.of("run.dir=" + runDir.getParent(), "run.name=" + runDir.getFileName(),
                "run.resume-from=latest"));
        all.addAll(List.of(settings));
        return all;
    }

    @Test
    void aCheckpointOfTwoExpertNodesResumesOnThreeExpertJvmsAndEqualsTheUninterruptedRun() throws Exception {
        Path runDir = copy("on-three");
        int coordinator = NodeProcesses.freeTcpPort();
        Path file = RecoveryTest.write(dir, "on-three-settings", STEPS, String.join("\n", "runtime.mode = cluster", "runtime.expert-nodes = 3",
                "cluster.port = " + coordinator, "cluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + coordinator + "\"]"));
        try (NodeProcesses nodes = new NodeProcesses(dir)) {
            nodes.start(file, "router", "router", "1g");
            for (int i = 0; i < 3; i++) nodes.start(file, "expert", "expert-" + i, "768m");
            JobResult run = nodes.whileAlive(Duration.ofMinutes(8), () -> RecoveryTest.train(file, resumeIn(runDir)));
            assertEquals(runDir.toAbsolutePath(), run.runDir());
            RecoveryTest.assertSameAsUninterrupted(reference, runDir, STEPS);
            JsonNode resumed = RecoveryTest.events(runDir, "resumed").get(0);
            assertEquals(lines(stopped.resolve("metrics.jsonl")), resumed.get("step").asInt(), "resumed at the preempted step's checkpoint");
            JsonNode placement = RecoveryTest.events(runDir, "placement").get(RecoveryTest.events(runDir, "placement").size() - 1);
            assertEquals(3, java.util.stream.StreamSupport.stream(placement.get("placement").spliterator(), false)
                    .map(p -> p.get("node").asText()).distinct().count(), "the experts now live on three nodes: " + placement);
        }
    }

    @Test
    void aCheckpointOfTwoExpertNodesResumesOnOneAndEqualsTheUninterruptedRun() throws Exception {
        Path runDir = copy("on-one");
        Path file = RecoveryTest.write(dir, "on-one-settings", STEPS, "runtime { mode = local, expert-nodes = 1 }");
        RecoveryTest.train(file, resumeIn(runDir));
        RecoveryTest.assertSameAsUninterrupted(reference, runDir, STEPS);
    }

    /**
     * A job requeued after it finished training (it died evaluating, say) restores the final
     * checkpoint and reuses it instead of writing it again: the run ends as the uninterrupted one,
     * with no step computed twice.
     */
    @Test
    void aRunResumedAfterItsLastCheckpointReusesItAndOnlyEvaluates() throws Exception {
        Path runDir = copy("finished");
        Path file = RecoveryTest.write(dir, "finished-settings", STEPS, "runtime { mode = local, expert-nodes = 2 }");
        RecoveryTest.train(file, resumeIn(runDir));
        Path finalCheckpoint = runDir.resolve("checkpoints").resolve(String.format("step-%06d", STEPS));
        assertTrue(Files.isRegularFile(finalCheckpoint.resolve("manifest.pb")), "the first resume wrote the final checkpoint");
        long written = Files.getLastModifiedTime(finalCheckpoint.resolve("manifest.pb")).toMillis();
        List<String> metricsBefore = Files.readAllLines(runDir.resolve("metrics.jsonl"));

        JobResult again = RecoveryTest.train(file, resumeIn(runDir));
        List<JsonNode> resumed = RecoveryTest.events(runDir, "resumed");
        assertEquals(STEPS, resumed.get(resumed.size() - 1).get("step").asInt(), "the second resume starts at the final checkpoint");
        assertEquals(metricsBefore, Files.readAllLines(runDir.resolve("metrics.jsonl")), "no step was computed again");
        assertEquals(written, Files.getLastModifiedTime(finalCheckpoint.resolve("manifest.pb")).toMillis(), "the final checkpoint was not rewritten");
        assertEquals(runDir.toAbsolutePath(), again.runDir());
        RecoveryTest.assertSameAsUninterrupted(reference, runDir, STEPS);
    }

    @Test
    void aCorruptedLatestCheckpointIsReportedByItsFileAndThePreviousOneIsUsed() throws Exception {
        Path runDir = copy("corrupted");
        Path checkpoints = runDir.resolve("checkpoints");
        String latest = Files.readString(checkpoints.resolve("latest")).trim();
        Path expertFile = checkpoints.resolve(latest).resolve("expert-1.safetensors");
        byte[] bytes = Files.readAllBytes(expertFile);
        bytes[bytes.length - 3] ^= 0x10; // a byte of a tensor, not of the header
        Files.write(expertFile, bytes);
        Path file = RecoveryTest.write(dir, "corrupted-settings", STEPS, "runtime { mode = local, expert-nodes = 2 }");
        RecoveryTest.train(file, resumeIn(runDir));
        RecoveryTest.assertSameAsUninterrupted(reference, runDir, STEPS);
        List<JsonNode> invalid = RecoveryTest.events(runDir, "checkpoint-invalid");
        assertTrue(invalid.stream().anyMatch(e -> e.get("reason").asText().contains(latest + "/expert-1.safetensors")
                && e.get("reason").asText().contains("SHA-256")), "the log names the bad file: " + invalid);
        int previous = RecoveryTest.events(runDir, "resumed").get(0).get("step").asInt();
        assertTrue(previous < Integer.parseInt(latest.substring("step-".length())), "resumed from an earlier checkpoint: step " + previous);
    }
}
