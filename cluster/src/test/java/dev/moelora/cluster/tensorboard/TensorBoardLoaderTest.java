package dev.moelora.cluster.tensorboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.model.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The event files read by TensorBoard's own loader (read_with_tensorboard.py). Optional: it needs a
 * Python with the tensorboard package, named by the environment variable MOELORA_TENSORBOARD_PYTHON
 * or the system property moelora.tensorboard.python; without one the tests are skipped, saying why.
 */
class TensorBoardLoaderTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static String python;

    @TempDir
    Path runDir;

    @BeforeAll
    static void findPythonWithTensorBoard() throws Exception {
        python = System.getProperty("moelora.tensorboard.python", System.getenv("MOELORA_TENSORBOARD_PYTHON"));
        assumeTrue(python != null && !python.isBlank(),
                "MOELORA_TENSORBOARD_PYTHON (or -Dmoelora.tensorboard.python) is unset: TensorBoard's own loader is not tried");
        PythonScript.Result r;
        try {
            r = PythonScript.run(List.of(python, "-c", "import tensorboard"), TIMEOUT);
        } catch (IOException e) {
            assumeTrue(false, "MOELORA_TENSORBOARD_PYTHON: " + e.getMessage());
            return;
        }
        assumeTrue(r.exit() == 0, python + " (MOELORA_TENSORBOARD_PYTHON) cannot import tensorboard: " + r.stderr());
    }

    @Test
    void tensorBoardReadsEveryScalarAndHistogramAsWritten() throws Exception {
        JsonNode read = readWithTensorBoard(RecordedRun.write(runDir));

        assertEquals(2.0, read.get("file_version").doubleValue(), "brain.Event:2");
        Map<RecordedRun.Key, Double> scalars = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> tags = read.get("scalars").fields(); tags.hasNext(); ) {
            Map.Entry<String, JsonNode> tag = tags.next();
            for (JsonNode s : tag.getValue()) {
                assertEquals(1_700_000_000.25, s.get(0).doubleValue(), "wall time");
                scalars.put(new RecordedRun.Key(s.get(1).longValue(), tag.getKey()), s.get(2).doubleValue());
            }
        }
        assertEquals(RecordedRun.expectedScalars(runDir), scalars);
        assertEquals(RecordedRun.expectedHistograms(runDir), histograms(read));
    }

    @Test
    void tensorBoardDrawsEachExpertAsAUnitWideBarCentredOnItsIndex() throws Exception {
        JsonNode read = readWithTensorBoard(RecordedRun.write(runDir));
        int seen = 0;
        for (Iterator<Map.Entry<String, JsonNode>> tags = read.get("histograms").fields(); tags.hasNext(); ) {
            Map.Entry<String, JsonNode> tag = tags.next();
            for (JsonNode h : tag.getValue()) {
                List<Double> bucket = RecordedRun.doubles(h.get("bucket"));
                int first = 0, last = bucket.size() - 1;
                while (first <= last && bucket.get(first) == 0) first++;
                while (last >= first && bucket.get(last) == 0) last--;
                List<List<Double>> expected = new ArrayList<>();
                for (int e = first; e <= last; e++) expected.add(List.of(e - 0.5, e + 0.5, (double) bucket.get(e).floatValue()));
                List<List<Double>> drawn = new ArrayList<>();
                for (JsonNode bar : h.get("drawn")) drawn.add(RecordedRun.doubles(bar));
                assertEquals(expected, drawn, tag.getKey() + " at step " + h.get("step"));
                seen += drawn.isEmpty() ? 0 : 1;
            }
        }
        assertEquals(5, seen, "the histograms that have tokens");
    }

    @Test
    void tensorBoardStopsAtARecordWhoseCrcIsWrong() throws Exception {
        Path tensorboard = RecordedRun.write(runDir);
        Path file;
        try (Stream<Path> files = Files.list(tensorboard)) {
            file = files.findFirst().orElseThrow();
        }
        byte[] bytes = Files.readAllBytes(file);
        bytes[bytes.length - 10] ^= 0x01; // inside the data of the last record, the metrics line of the far step
        Files.write(file, bytes);

        JsonNode scalars = readWithTensorBoard(tensorboard).get("scalars");
        List<Long> steps = new ArrayList<>();
        for (JsonNode s : scalars.get("loss/total")) steps.add(s.get(1).longValue());
        assertEquals(List.of(1L, 2L, 3L), steps, "the record after the bad one is never shown");
    }

    @Test
    void tensorBoardReadsARestartedRunsFilesInStartOrder() throws Exception {
        for (int step = 1; step <= 2; step++) {
            try (TensorBoardRecorder tb = new TensorBoardRecorder(runDir, RecordedRun.CLOCK)) {
                tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(step, 2, 1.0 / step, 0.0, 1e-3, 1.0, 4, 1.0)));
            }
        }
        JsonNode loss = readWithTensorBoard(runDir.resolve("tensorboard")).get("scalars").get("loss/total");
        assertEquals(2, loss.size(), loss.toString());
        assertEquals(List.of(1L, 2L), List.of(loss.get(0).get(1).longValue(), loss.get(1).get(1).longValue()));
        assertEquals(0.5, loss.get(1).get(2).doubleValue());
    }

    private static JsonNode readWithTensorBoard(Path dir) throws Exception {
        PythonScript.Result r = PythonScript.run(python, "read_with_tensorboard.py", TIMEOUT, dir);
        assertEquals(0, r.exit(), r::describe);
        assertTrue(!r.stdout().isBlank(), r::describe);
        return RecordedRun.JSON.readTree(r.stdout());
    }

    private static Map<RecordedRun.Key, RecordedRun.Histogram> histograms(JsonNode read) {
        Map<RecordedRun.Key, RecordedRun.Histogram> out = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> tags = read.get("histograms").fields(); tags.hasNext(); ) {
            Map.Entry<String, JsonNode> tag = tags.next();
            for (JsonNode h : tag.getValue()) out.put(new RecordedRun.Key(h.get("step").longValue(), tag.getKey()), RecordedRun.histogram(h));
        }
        return out;
    }
}
