package dev.moelora.cluster.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.job.JobResult;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * MoELoRA instruction tuning of a LLaMA-family decoder on the expert-parallel runtime equals the
 * single-process decoder run bit for bit: every step's numbers, every tensor of the final
 * adapter, and the math evaluation router 0 runs by greedy generation through the remote experts
 * (predictions.jsonl line for line). On the committed tiny checkpoint (the golden tests' gqa-f32,
 * with its 48-token tokenizer), MoELoRA on three of the seven projections, gradient accumulation.
 */
@Timeout(value = 15, unit = TimeUnit.MINUTES)
class DecoderExpertParallelTest {
    static final Path GOLDEN = Path.of("../model/src/test/resources/llama/gqa-f32");
    private static final ObjectMapper JSON = new ObjectMapper();
    static final int STEPS = 6;

    @TempDir
    Path dir;
    Path model;

    @BeforeEach
    void checkpointAndData() throws IOException {
        model = Files.createDirectories(dir.resolve("tiny-llama"));
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json"}) Files.copy(GOLDEN.resolve(f), model.resolve(f));
        StringBuilder train = new StringBuilder("[");
        for (int i = 0; i < 24; i++) {
            int a = i % 7 + 1, b = (i * 3) % 5 + 2;
            if (i > 0) train.append(",\n");
            train.append(String.format("{\"instruction\": \"What is %d + %d?\", \"input\": \"\", \"output\": \"%d + %d = %d\", \"answer\": \"%d\"}",
                    a, b, a, b, a + b, a + b));
        }
        Files.writeString(dir.resolve("train.json"), train.append("]").toString());
        Files.createDirectories(dir.resolve("eval/Sums"));
        Files.writeString(dir.resolve("eval/Sums/test.json"), "[{\"instruction\": \"What is 2 + 3?\", \"input\": \"\", \"output\": \"5\", \"answer\": \"5\"},"
                + "{\"instruction\": \"What is 4 + 4?\", \"input\": \"\", \"output\": \"8\", \"answer\": \"8\"}]");
    }

    private Path settings(String name, String extra) throws IOException {
        Path file = dir.resolve(name + ".conf");
        Files.writeString(file, """
                model { name = llama, path = "%s" }
                data.source = instructions
                data.instructions { file = "%s", max-length = 40, eval-root = "%s", eval-tasks = [Sums], max-new-tokens = 4 }
                adapter { type = moelora, targets = [q_proj, v_proj, down_proj], experts = 4, expert-rank = 2, dropout = 0.1 }
                train { steps = %d, batch-size = 3, grad-accum = 2, warmup-steps = 1, eval-batch-size = 4 }
                checkpoint { every = 3, every-seconds = 0 }
                dashboard.port = 0
                run { dir = "%s", name = %s }
                %s
                """.formatted(path(model), path(dir.resolve("train.json")), path(dir.resolve("eval")), STEPS, path(dir), name, extra));
        return file;
    }

    private static String path(Path p) {
        return p.toAbsolutePath().toString().replace("\\", "/");
    }

    /** Everything a decoder run writes that must not depend on where its experts ran. */
    private static void assertSameRuns(Path expected, Path actual) throws IOException {
        ExpertParallelEquivalenceTest.assertSameSteps(expected, actual, STEPS);
        ExpertParallelEquivalenceTest.assertSameRouting(expected, actual, STEPS);
        ExpertParallelEquivalenceTest.assertSameTensors(expected, actual);
        List<String> e = Files.readAllLines(expected.resolve("predictions.jsonl")), a = Files.readAllLines(actual.resolve("predictions.jsonl"));
        assertEquals(2, e.size());
        assertEquals(e, a, "the same completions, generated through the remote experts");
        JsonNode config = JSON.readTree(actual.resolve("adapter/adapter_config.json").toFile());
        assertEquals("MOELORA", config.get("moelora_type").asText());
        assertEquals("CAUSAL_LM", config.get("task_type").asText());
    }

    @Test
    void theDecoderOnTheRuntimeInOneJvmEqualsTheSingleProcessRun() throws Exception {
        JobResult single = RecoveryTest.train(settings("single", ""), List.of());
        JobResult local = RecoveryTest.train(settings("local", "runtime { mode = local, expert-nodes = 2 }"), List.of());
        assertSameRuns(single.runDir(), local.runDir());
        assertEquals(single.scores(), local.scores());
        assertEquals(single.trainableParameters(), local.trainableParameters());
        assertTrue(Files.readString(local.runDir().resolve("events.jsonl")).contains("\"checkpoint\""), "checkpoints were written");
    }

    @Test
    void theDecoderWithItsExpertsOnTwoJvmsAndARouterJvmEqualsTheSingleProcessRun() throws Exception {
        JobResult single = RecoveryTest.train(settings("reference", ""), List.of());
        int coordinator = NodeProcesses.freeTcpPort();
        Path file = settings("cluster", String.join("\n", "runtime { mode = cluster, routers = 1, expert-nodes = 2 }",
                "cluster.port = " + coordinator, "cluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + coordinator + "\"]"));
        try (NodeProcesses nodes = new NodeProcesses(dir)) {
            nodes.start(file, "router", "router", "1g");
            nodes.start(file, "expert", "expert-a", "768m");
            nodes.start(file, "expert", "expert-b", "768m");
            JobResult cluster = nodes.whileAlive(Duration.ofMinutes(8), () -> RecoveryTest.train(file, List.of()));
            assertSameRuns(single.runDir(), cluster.runDir());
            assertEquals(single.scores(), cluster.scores());
            assertEquals(Map.of("router", 0, "expert-a", 0, "expert-b", 0), nodes.exitCodes(60));
        }
    }

    /**
     * The decoder's runtime checkpoints: a run on 2 expert nodes preempted after step 2 (its
     * checkpoint written on the way out) resumes from latest on 1 expert node and equals the
     * uninterrupted single-process run.
     */
    @Test
    void aPreemptedDecoderRunOnTheRuntimeResumesOnOtherNodesAndEqualsTheSingleProcessRun() throws Exception {
        JobResult single = RecoveryTest.train(settings("uninterrupted", ""), List.of());
        // the scheduled checkpoints (every 3 steps) stay on: a preemption arriving during the one of step 3 ends the run on it
        Path two = settings("resumed", "runtime { mode = local, expert-nodes = 2 }");
        Path metrics = dir.resolve("resumed/metrics.jsonl");
        JobResult partial = ExpertParallelJob.run(dev.moelora.cluster.config.RunConfig.load(two, List.of()), ResumeAnywhereTest.quiet(), false,
                () -> dev.moelora.cluster.job.Preemption.when(() -> ResumeAnywhereTest.lines(metrics) >= 2));
        assertTrue(partial.losses().size() >= 2 && partial.losses().size() < STEPS, "stopped early: " + partial.losses().size() + " steps");
        assertTrue(Files.notExists(partial.runDir().resolve("predictions.jsonl")), "a preempted run does not evaluate");
        Path one = settings("resumed", "runtime { mode = local, expert-nodes = 1 }");
        JobResult resumed = RecoveryTest.train(one, List.of("run.resume-from=latest"));
        assertEquals(partial.runDir(), resumed.runDir());
        assertEquals(partial.losses().size(), RecoveryTest.events(resumed.runDir(), "resumed").get(0).get("step").asInt());
        assertSameRuns(single.runDir(), resumed.runDir());
    }
}
