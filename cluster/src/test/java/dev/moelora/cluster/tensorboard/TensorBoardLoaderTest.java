package dev.moelora.cluster.tensorboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.model.train.Trainer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The event files read by TensorBoard itself: its Python loader (read_with_tensorboard.py) and its
 * server with the Rust data server (--load_fast=true, its default where installed) over HTTP on
 * 127.0.0.1, stopped after the test. Optional: they need a Python with the tensorboard package,
 * named by the environment variable MOELORA_TENSORBOARD_PYTHON or the system property
 * moelora.tensorboard.python; without one they are skipped, saying why.
 */
@org.junit.jupiter.api.Timeout(value = 10, unit = java.util.concurrent.TimeUnit.MINUTES)
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
        String[] said = r.stderr().strip().split("\n");
        assumeTrue(r.exit() == 0, python + " (MOELORA_TENSORBOARD_PYTHON) cannot import tensorboard: " + said[said.length - 1]);
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

        List<Long> steps = new ArrayList<>();
        for (JsonNode s : scalars(readWithTensorBoard(tensorboard), "loss/total")) steps.add(s.get(1).longValue());
        assertEquals(List.of(1L, 2L, 3L), steps, "the record after the bad one is never shown");
    }

    @Test
    void tensorBoardReadsARestartedRunsFilesInStartOrder() throws Exception {
        for (int step = 1; step <= 2; step++) {
            try (TensorBoardRecorder tb = new TensorBoardRecorder(runDir, RecordedRun.CLOCK)) {
                tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(step, 2, 1.0 / step, 0.0, 1e-3, 1.0, 4, 1.0)));
            }
        }
        JsonNode loss = scalars(readWithTensorBoard(runDir.resolve("tensorboard")), "loss/total");
        assertEquals(2, loss.size(), loss.toString());
        assertEquals(List.of(1L, 2L), List.of(loss.get(0).get(1).longValue(), loss.get(1).get(1).longValue()));
        assertEquals(0.5, loss.get(1).get(2).doubleValue());
    }

    @Test
    void aRewindMakesTensorBoardForgetTheStepsAfterTheCheckpointSoEachStepShowsOnceWithItsNewValue() throws Exception {
        try (TensorBoardRecorder tb = new TensorBoardRecorder(runDir, RecordedRun.CLOCK)) {
            for (int step = 1; step <= 5; step++) {
                tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(step, 5, 10.0 + step, 0.0, 1e-3, 1.0, 4, 1.0)));
            }
            tb.rewind(3); // a recovery restored the checkpoint of step 3: steps 4 and 5 are computed again
            for (int step = 4; step <= 5; step++) {
                tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(step, 5, 20.0 + step, 0.0, 1e-3, 1.0, 4, 1.0)));
            }
        }
        JsonNode loss = scalars(readWithTensorBoard(runDir.resolve("tensorboard")), "loss/total");
        List<List<Double>> seen = new ArrayList<>();
        for (JsonNode s : loss) seen.add(List.of(s.get(1).doubleValue(), s.get(2).doubleValue()));
        assertEquals(List.of(List.of(1.0, 11.0), List.of(2.0, 12.0), List.of(3.0, 13.0), List.of(4.0, 24.0), List.of(5.0, 25.0)), seen,
                "TensorBoard purged the orphaned steps 4 and 5 at the session start");
    }

    @Test
    void tensorBoardsServerWithItsDataServerShowsTheSameScalarsAndBars() throws Exception {
        PythonScript.Result probe = PythonScript.run(List.of(python, "-c",
                "import tensorboard_data_server as s, sys; sys.exit(0 if s.server_binary() else 1)"), TIMEOUT);
        assumeTrue(probe.exit() == 0, python + " has no tensorboard_data_server binary: --load_fast=true is not tried");
        Path tensorboard = RecordedRun.write(runDir);
        Path log = runDir.resolve("tensorboard-server.log");
        Process server = new ProcessBuilder(python, "-m", "tensorboard.main", "--logdir", tensorboard.toString(),
                "--host", "127.0.0.1", "--port", "0", "--load_fast=true", "--reload_interval", "1")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            String base = serverAddress(server, log, deadline);
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
            while (scalarSeries(http, base, "loss/total").size() < 4) { // the last record written: all are loaded
                assertTrue(System.nanoTime() < deadline && server.isAlive(), () -> "TensorBoard did not load the run: " + read(log));
                Thread.sleep(200);
            }
            Map<RecordedRun.Key, Double> scalars = new HashMap<>();
            for (String tag : RecordedRun.expectedScalars(runDir).keySet().stream().map(RecordedRun.Key::tag).distinct().toList()) {
                for (JsonNode point : scalarSeries(http, base, tag)) {
                    JsonNode v = point.get(2); // NaN and the infinities come as strings
                    scalars.put(new RecordedRun.Key(point.get(1).longValue(), tag), v.isNumber() ? v.doubleValue() : Double.parseDouble(v.textValue()));
                }
            }
            assertEquals(RecordedRun.expectedScalars(runDir), scalars);
            for (Map.Entry<RecordedRun.Key, RecordedRun.Histogram> h : RecordedRun.expectedHistograms(runDir).entrySet()) {
                JsonNode bars = null;
                for (JsonNode step : get(http, base, "/data/plugin/histograms/histograms", h.getKey().tag())) {
                    if (step.get(1).longValue() == h.getKey().step()) bars = step.get(2);
                }
                assertTrue(bars != null, "TensorBoard shows no " + h.getKey());
                List<List<Double>> loaded = new ArrayList<>(), expected = new ArrayList<>();
                for (JsonNode bar : bars) {
                    if (bar.get(2).doubleValue() != 0) loaded.add(RecordedRun.doubles(bar));
                }
                List<Double> bucket = h.getValue().bucket();
                for (int e = 0; e < bucket.size(); e++) {
                    if (bucket.get(e) != 0) expected.add(List.of(e - 0.5, e + 0.5, bucket.get(e)));
                }
                assertEquals(expected, loaded, "the bars with tokens of " + h.getKey() + " (the others hold 0)");
            }
        } finally {
            server.destroy();
            if (!server.waitFor(10, TimeUnit.SECONDS)) server.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** The http://127.0.0.1:port address TensorBoard prints once it listens. */
    private static String serverAddress(Process server, Path log, long deadline) throws Exception {
        Pattern address = Pattern.compile("(http://127\\.0\\.0\\.1:\\d+)/");
        while (true) {
            Matcher m = address.matcher(read(log));
            if (m.find()) return m.group(1);
            assertTrue(System.nanoTime() < deadline && server.isAlive(), () -> "TensorBoard did not start: " + read(log));
            Thread.sleep(200);
        }
    }

    private static JsonNode scalarSeries(HttpClient http, String base, String tag) throws Exception {
        return get(http, base, "/data/plugin/scalars/scalars", tag);
    }

    /** A data route of the only run, "." (the log directory itself), for one tag; an empty array while it is unknown. */
    private static JsonNode get(HttpClient http, String base, String route, String tag) throws Exception {
        URI uri = URI.create(base + route + "?run=.&tag=" + URLEncoder.encode(tag, StandardCharsets.UTF_8));
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() == 400 || r.statusCode() == 404) return RecordedRun.JSON.createArrayNode();
        assertEquals(200, r.statusCode(), () -> uri + ": " + r.body());
        return RecordedRun.JSON.readTree(r.body());
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static JsonNode readWithTensorBoard(Path dir) throws Exception {
        PythonScript.Result r = PythonScript.run(python, "read_with_tensorboard.py", TIMEOUT, dir);
        assertEquals(0, r.exit(), r::describe);
        assertTrue(!r.stdout().isBlank(), r::describe);
        return RecordedRun.JSON.readTree(r.stdout());
    }

    private static JsonNode scalars(JsonNode read, String tag) {
        JsonNode series = read.get("scalars").get(tag);
        assertTrue(series != null, "TensorBoard found no " + tag + " in " + read.get("scalars").size() + " scalar tags");
        return series;
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
