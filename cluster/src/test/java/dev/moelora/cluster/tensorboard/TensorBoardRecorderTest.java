package dev.moelora.cluster.tensorboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.model.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What TensorBoardRecorder makes of the record lines, read back by read_tfevents.py, a reader that
 * shares no code with the writer and checks both CRCs of every record.
 */
class TensorBoardRecorderTest {
    @TempDir
    Path runDir;

    @Test
    void everyScalarAndHistogramReadBackEqualsTheJsonlRecords() throws Exception {
        Path tensorboard = RecordedRun.write(runDir);

        RecordedRun.Read read = PythonScript.readAll(tensorboard);

        assertEquals(RecordedRun.expectedScalars(runDir), read.scalars());
        assertEquals(RecordedRun.expectedHistograms(runDir), read.histograms());
        JsonNode first = read.events().get(0);
        assertEquals("brain.Event:2", first.get("file_version").textValue());
        for (JsonNode e : read.events()) {
            assertEquals(1_700_000_000.25, e.get("wall_time").doubleValue(), "wall time of " + e.get("record"));
        }
    }

    @Test
    void theTagsAreTheDocumentedOnes() throws Exception {
        RecordedRun.write(runDir);
        Set<String> tags = new TreeSet<>();
        for (RecordedRun.Key k : PythonScript.readAll(runDir.resolve("tensorboard")).scalars().keySet()) {
            if (k.step() == 1) tags.add(k.tag().replace(RecordedRun.QUERY, "Q").replace(RecordedRun.VALUE, "V"));
        }
        Set<String> expected = new TreeSet<>(List.of("loss/total", "loss/task", "loss/aux", "train/lr", "train/grad_norm", "train/tokens_per_s"));
        for (String m : List.of("Q", "V")) {
            for (String t : List.of("imbalance_max_mean", "load_cv", "gate_entropy", "balance_loss", "contrastive_loss", "effective_experts")) {
                expected.add("routing/" + m + "/" + t);
            }
            for (int e = 0; e < (m.equals("Q") ? 4 : 8); e++) expected.add("routing/" + m + "/expert_" + e + "_tokens");
        }
        for (String n : List.of("expert@127.0.0.1:40123", "router-0")) {
            for (String t : List.of("compute_s", "wait_s", "transfer_s", "bytes_sent", "bytes_received")) expected.add("nodes/" + n + "/" + t);
        }
        assertEquals(expected, tags);
    }

    @Test
    void routingSpreadIsDerivedFromRoutedTokensAsRecordsMdSays() throws Exception {
        try (TensorBoardRecorder tb = new TensorBoardRecorder(runDir, RecordedRun.CLOCK)) {
            tb.record(RecordStream.ROUTING, routing(1, "skewed", 3, 1, 0, 4));
            tb.record(RecordStream.ROUTING, routing(1, "uniform", 5, 5, 5, 5));
            tb.record(RecordStream.ROUTING, routing(1, "one", 0, 8, 0, 0));
            tb.record(RecordStream.ROUTING, routing(1, "given", 1, 1).put("effective_experts", 1.75));
            tb.record(RecordStream.ROUTING, routing(1, "none", 0, 0, 0));
        }
        Map<RecordedRun.Key, Double> s = PythonScript.readAll(runDir.resolve("tensorboard")).scalars();

        // (3, 1, 0, 4): mean 2, max 4, variance (1 + 1 + 4 + 4) / 4, shares 3/8, 1/8, 0, 1/2
        assertEquals(2.0, s.get(key("skewed", "imbalance_max_mean")));
        assertEquals((float) Math.sqrt(2.5 / 4), s.get(key("skewed", "load_cv")).floatValue());
        assertEquals((float) (4 / Math.pow(3, 0.375)), s.get(key("skewed", "effective_experts")).floatValue()); // exp(2 ln 2 - 3/8 ln 3)
        assertEquals(1.0, s.get(key("uniform", "imbalance_max_mean")));
        assertEquals(0.0, s.get(key("uniform", "load_cv")));
        assertEquals(4.0, s.get(key("uniform", "effective_experts")), "E for a uniform spread");
        assertEquals(4.0, s.get(key("one", "imbalance_max_mean")));
        assertEquals((float) Math.sqrt(3), s.get(key("one", "load_cv")).floatValue());
        assertEquals(1.0, s.get(key("one", "effective_experts")), "top_k (1) when every token goes to the same expert");
        assertEquals(1.75, s.get(key("given", "effective_experts")), "the line's own field wins");
        for (String derived : List.of("imbalance_max_mean", "load_cv", "effective_experts")) {
            assertTrue(!s.containsKey(key("none", derived)), "no spread without tokens: " + derived);
        }
        assertEquals(0.0, s.get(key("none", "expert_2_tokens")));
    }

    @Test
    void aLineWithoutItsStepOrWithAWrongTypeIsRejectedNamingStreamAndFieldAndWritesNothing() throws Exception {
        try (TensorBoardRecorder tb = new TensorBoardRecorder(runDir, RecordedRun.CLOCK)) {
            long before = Files.size(tb.file());
            assertRejected(tb, RecordStream.METRICS, "{\"loss\": 1.0}", "METRICS", "'step'");
            assertRejected(tb, RecordStream.METRICS, "{\"step\": \"1\", \"loss\": 1.0}", "METRICS", "'step'");
            assertRejected(tb, RecordStream.METRICS, "{\"step\": 1.5, \"loss\": 1.0}", "METRICS", "'step'");
            assertRejected(tb, RecordStream.ROUTING, "{\"module\": \"m\", \"routed_tokens\": [1]}", "ROUTING", "'step'");
            assertRejected(tb, RecordStream.NODES, "{\"node\": \"n\", \"wait_s\": 1}", "NODES", "'step'");
            assertRejected(tb, RecordStream.METRICS, "{\"step\": 1, \"loss\": 1.0, \"lr\": \"fast\"}", "METRICS", "'lr'");
            assertRejected(tb, RecordStream.ROUTING, "{\"step\": 1, \"routed_tokens\": [1]}", "ROUTING", "'module'");
            assertRejected(tb, RecordStream.ROUTING, "{\"step\": 1, \"module\": \"m\", \"routed_tokens\": [1, -2]}", "ROUTING", "'routed_tokens'");
            assertRejected(tb, RecordStream.ROUTING, "{\"step\": 1, \"module\": \"m\", \"routed_tokens\": 3}", "ROUTING", "'routed_tokens'");
            assertRejected(tb, RecordStream.NODES, "{\"step\": 1, \"wait_s\": 1}", "NODES", "'node'");
            assertEquals(before, Files.size(tb.file()), "a rejected line writes nothing");
        }
    }

    @Test
    void unknownAndAbsentFieldsAndEventLinesAreSkipped() throws Exception {
        try (TensorBoardRecorder tb = new TensorBoardRecorder(runDir, RecordedRun.CLOCK)) {
            tb.record(RecordStream.EVENTS, json("{\"event\": \"start\", \"time\": \"2026-01-01T00:00:00Z\"}"));
            tb.record(RecordStream.METRICS, json("{\"step\": 4, \"loss\": 1.5, \"something_new\": [1, {\"x\": 2}]}"));
            tb.record(RecordStream.METRICS, json("{\"step\": 5, \"steps\": 9}"));
            tb.record(RecordStream.ROUTING, json("{\"step\": 4, \"module\": \"m\", \"gate_entropy\": 0.5, \"mean_output_cosine\": [[1]]}"));
            tb.record(RecordStream.NODES, json("{\"step\": 4, \"node\": \"router-0\", \"frames_dropped\": {\"STALE\": 2}, \"wait_s\": \"NaN\"}"));
        }
        RecordedRun.Read read = PythonScript.readAll(runDir.resolve("tensorboard"));
        assertEquals(Map.of(new RecordedRun.Key(4, "loss/total"), 1.5, new RecordedRun.Key(4, "routing/m/gate_entropy"), 0.5,
                new RecordedRun.Key(4, "nodes/router-0/wait_s"), Double.NaN), read.scalars());
        assertEquals(4, read.events().size(), "the file version and one event per line with values");
    }

    @Test
    void linesFromSeveralThreadsBecomeWholeEvents() throws Exception {
        int threads = 4, perThread = 50;
        List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch go = new CountDownLatch(1);
        try (TensorBoardRecorder tb = new TensorBoardRecorder(runDir, RecordedRun.CLOCK)) {
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int base = 1000 * (t + 1);
                Thread w = new Thread(() -> {
                    try {
                        go.await();
                        for (int i = 0; i < perThread; i++) {
                            tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(base + i, 0, i + 0.5, 0.25, 1e-3, 1.0, 64, 0.5)));
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                });
                w.start();
                workers.add(w);
            }
            go.countDown();
            for (Thread w : workers) {
                w.join(60_000);
                assertTrue(!w.isAlive(), w + " finished");
            }
        }
        assertEquals(List.of(), failures);
        RecordedRun.Read read = PythonScript.readAll(runDir.resolve("tensorboard"));
        assertEquals(1 + threads * perThread, read.events().size());
        for (JsonNode e : read.events().subList(1, read.events().size())) {
            long step = e.get("step").longValue();
            assertEquals(6, e.get("values").size(), "all six metrics of step " + step + " in one event");
            assertEquals(step % 1000 + 0.5, read.scalars().get(new RecordedRun.Key(step, "loss/total")));
        }
    }

    private static void assertRejected(TensorBoardRecorder tb, RecordStream stream, String line, String... named) throws Exception {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tb.record(stream, json(line)), line);
        for (String n : named) assertTrue(e.getMessage().contains(n), "'" + e.getMessage() + "' names " + n);
    }

    private static ObjectNode routing(int step, String module, long... routed) {
        ObjectNode line = RecordedRun.JSON.createObjectNode().put("step", step).put("module", module);
        ArrayNode array = line.putArray("routed_tokens");
        for (long r : routed) array.add(r);
        return line;
    }

    private static RecordedRun.Key key(String module, String tag) {
        return new RecordedRun.Key(1, "routing/" + module + "/" + tag);
    }

    private static ObjectNode json(String text) throws Exception {
        return (ObjectNode) RecordedRun.JSON.readTree(text);
    }
}
