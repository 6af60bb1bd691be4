package dev.moelora.cluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.tensorboard.PythonScript;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.xml.parsers.DocumentBuilderFactory;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code moelora bench} runs one step of every adapter family on the decoder and on MiniLM, tiny
 * batches, and prints every figure, with the trainable parameter count that bench/decoder_step.py
 * must print too (the two steps train the same tensors). Nothing here is a timing assertion.
 */
class BenchCommandTest {
    /** Trainable parameters of the bench's decoder adapters (rank 8 on q, k, v, o of 4 layers, d 256). */
    static final Map<String, Long> DECODER = Map.of(
            "lora", 16L * 8 * (256 + 256),                           // 16 modules x r (d_in + d_out)
            "tied-lora", 4L * (8 * (256 + 256) + 4 * (8 + 256)),      // per module type: tied A, B + per layer u, v
            "moelora", 16L * (4 * 256 + 4 * 2 * (256 + 256)));       // per module: gate E d_in + E r_e (d_in + d_out)
    /** ... and on MiniLM with the run defaults (query, value of 6 layers, d 384; MoELoRA E 8, r_e 1). */
    static final Map<String, Long> ENCODER = Map.of(
            "lora", 12L * 8 * (384 + 384),
            "tied-lora", 2L * (8 * (384 + 384) + 6 * (8 + 384)),
            "moelora", 12L * (8 * 384 + 8 * (384 + 384)));
    static final String[] FIGURES = {"machine: ", "load_at_start=", "bench=", "tokens_per_s=", "step_ms=", "forward_ms=", "backward_ms=",
        "optimizer_ms=", "gflop_per_step=", "gflop_per_s=", "sgemm_gflop_per_s=", "sgemm_fraction=", "heap_bytes_per_step=",
        "rss_mib=", "nd4j_ops_per_step=", "gc_during_timed_steps=", "loss=", "load_at_end="};

    @ParameterizedTest
    @ValueSource(strings = {"lora", "tied-lora", "moelora"})
    void decoderBenchRunsAStepOfEveryFamily(String family) {
        var run = DecoderCommandsTest.moelora("bench", "--decoder", "--adapter", family, "--batch", "2", "--seq", "8", "--steps", "1", "--warmup", "0");
        assertEquals(0, run.exit(), run.err());
        assertFigures(run.out());
        assertEquals(DECODER.get(family), figure(run.out(), "trainable_parameters"), run.out());
        assertEquals(16, figure(run.out(), "tokens_per_step"), run.out());
        assertTrue(run.out().contains("bench=decoder " + family + ": "), run.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "tied-lora", "moelora"})
    void encoderBenchRunsAStepOfEveryFamily(String family) {
        var run = DecoderCommandsTest.moelora("bench", "--adapter", family, "--batch", "2", "--seq", "8", "--steps", "1", "--warmup", "0");
        assertEquals(0, run.exit(), run.err());
        assertFigures(run.out());
        assertEquals(ENCODER.get(family), figure(run.out(), "trainable_parameters"), run.out());
        assertTrue(run.out().contains("sgemm_square_1024_gflop_per_s="), run.out());
    }

    /**
     * bench/decoder_step.py builds the same adapters: the same trainable count for every family.
     * Skipped where /usr/bin/python3 has no torch (the comparison needs it, the build does not).
     */
    @Test
    void pytorchStepTrainsTheSameParametersAsTheJavaBench() throws Exception {
        var probe = PythonScript.run(List.of("/usr/bin/python3", "-c", "import torch"), Duration.ofSeconds(60));
        assumeTrue(probe.exit() == 0, "/usr/bin/python3 cannot import torch: " + probe.stderr());
        for (String family : DECODER.keySet()) {
            var r = PythonScript.run(List.of("/usr/bin/python3", "../bench/decoder_step.py", "--adapter", family, "--batch", "2", "--seq", "8",
                    "--steps", "1", "--warmup", "0"), Duration.ofSeconds(120));
            assertEquals(0, r.exit(), r.describe());
            assertEquals(DECODER.get(family), figure(r.stdout(), "trainable_parameters"), r.stdout());
            assertTrue(r.stdout().contains("tokens_per_s="), r.stdout());
        }
    }

    @Test
    void unknownAdapterIsRefusedByName() {
        var run = DecoderCommandsTest.moelora("bench", "--decoder", "--adapter", "dora");
        assertEquals(2, run.exit());
        assertTrue(run.err().contains("--adapter must be one of lora, tied-lora, moelora; got 'dora'"), run.err());
    }

    @Test
    void badSizesAndTwoBenchmarksAtOnceAreRefused() {
        var zero = DecoderCommandsTest.moelora("bench", "--decoder", "--steps", "0");
        assertEquals(2, zero.exit());
        assertTrue(zero.err().contains("--steps must be >= 1, got 0"), zero.err());
        var both = DecoderCommandsTest.moelora("bench", "--decoder", "--frames");
        assertEquals(2, both.exit());
        assertTrue(both.err().contains("--decoder, --runtime, --scaling and --frames are separate benchmarks"), both.err());
    }

    /**
     * The tiniest real sweep: the nodes axis (1 and 2 expert nodes) at E 4 and ~64 tokens (a batch of
     * 2 of the suite's ~26 tokens per example), one
     * warm-up and one timed step, every runtime, the distributed one in real JVMs (a router and 1
     * or 2 expert JVMs). A row per point whose tokens are what the runs' metrics.jsonl counted,
     * the CSV and the SVG. The single-process and colocated runs ran each in a child JVM of its own.
     * A node that dies fails the run (NodeProcesses.whileAlive); the timeout fails a hang.
     */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void scalingSweepTimesEveryRuntimeAtEveryPointAndWritesTheCsvAndPlot(@TempDir Path dir) throws Exception {
        Path work = dir.resolve("sweep");
        var run = DecoderCommandsTest.moelora("bench", "--scaling", "--scaling-axes", "nodes", "--scaling-nodes", "1,2",
                "--scaling-base", "experts=4,tokens=64", "--steps", "1", "--warmup", "1", "--scaling-dir", work.toString());
        assertEquals(0, run.exit(), run.err() + run.out());
        assertTrue(run.out().startsWith("machine: "), run.out());
        // metrics.jsonl of each run: step 2 is the timed one; every runtime trained the same batches.
        ObjectMapper json = new ObjectMapper();
        long tokens = -1;
        for (String r : List.of("single-process-e4-b2x1", "colocated-e4-b2x1-n1", "colocated-e4-b2x1-n2", "distributed-e4-b2x1-n1", "distributed-e4-b2x1-n2")) {
            List<String> steps = Files.readAllLines(work.resolve(r).resolve("metrics.jsonl"));
            assertEquals(2, steps.size(), r);
            long t = json.readTree(steps.get(1)).get("tokens").asLong();
            if (tokens >= 0) assertEquals(tokens, t, r);
            tokens = t;
        }
        assertTrue(tokens > 0);
        // the in-process runs each ran in a JVM of their own (their native buffers end with it), not in the bench's
        java.util.Set<Long> pids = new java.util.HashSet<>();
        for (String r : List.of("single-process-e4-b2x1", "colocated-e4-b2x1-n1", "colocated-e4-b2x1-n2")) {
            Path result = work.resolve(r + ".result.json");
            assertTrue(Files.exists(result), "no child JVM's result for " + r);
            long pid = json.readTree(result.toFile()).get("pid").asLong();
            assertTrue(pid != ProcessHandle.current().pid(), r + " ran in the bench's own JVM (pid " + pid + ")");
            assertTrue(pids.add(pid), r + " ran in the JVM of an earlier run (pid " + pid + ")");
        }
        for (int nodes = 1; nodes <= 2; nodes++) {
            Matcher row = Pattern.compile("(?m)^nodes +" + nodes + " +4 +" + nodes + " +2 +" + tokens + "( +\\d+\\.\\d{3}){3} +\\d+\\.\\d\\dx +\\d+\\.\\d\\dx( +\\d+){3}$")
                    .matcher(run.out());
            assertTrue(row.find(), "no table row for " + nodes + " nodes with " + tokens + " tokens in\n" + run.out());
        }
        List<String> csv = Files.readAllLines(work.resolve("scaling.csv"));
        assertEquals(3, csv.size(), String.join("\n", csv));
        assertTrue(csv.get(1).startsWith("nodes,1,4,1,1,2," + tokens + ".0,"), csv.get(1));
        assertTrue(csv.get(2).startsWith("nodes,2,4,2,1,2," + tokens + ".0,"), csv.get(2));
        assertTrue(run.out().contains("wrote " + work.resolve("scaling.svg").toAbsolutePath()), run.out());
        var f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        var svg = f.newDocumentBuilder().parse(work.resolve("scaling.svg").toFile()).getDocumentElement();
        assertEquals(3, svg.getElementsByTagNameNS("*", "polyline").getLength(), "a line per runtime");
    }

    @Test
    void scalingPointsThatCannotRunAreRefusedBeforeAnyRun() {
        var nodes = DecoderCommandsTest.moelora("bench", "--scaling", "--scaling-axes", "nodes", "--scaling-nodes", "1,8", "--scaling-base", "experts=4");
        assertEquals(2, nodes.exit());
        assertTrue(nodes.err().contains("--scaling: expert nodes must be between 1 and the experts (4), got 8"), nodes.err());
        var base = DecoderCommandsTest.moelora("bench", "--scaling", "--scaling-base", "layers=2");
        assertEquals(2, base.exit());
        assertTrue(base.err().contains("--scaling-base takes experts=, nodes= and tokens=; got 'layers'"), base.err());
    }

    private static void assertFigures(String out) {
        for (String f : FIGURES) assertTrue(out.contains(f), "no '" + f + "' in\n" + out);
    }

    private static long figure(String out, String key) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(key) + "=(\\d+)").matcher(out);
        assertTrue(m.find(), "no " + key + " in\n" + out);
        return Long.parseLong(m.group(1));
    }
}
