package dev.moelora.cluster.dashboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moelora.cluster.config.RunConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The server without a browser: the JSON API, the event stream, ports, the config switch. */
@Timeout(60)
class DashboardServerTest {
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @TempDir
    Path tmp;
    Dashboard dashboard;

    @AfterEach
    void stop() {
        if (dashboard != null) dashboard.close();
    }

    private Dashboard start(Path root, int port, PrintStream out) {
        dashboard = Dashboard.start(root, "127.0.0.1", port, out);
        return dashboard;
    }

    static String get(String url) throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), url + ": " + r.body());
        return r.body();
    }

    /** Polls the API until a run shows the step (the tailer reads every 250 ms). */
    static JsonNode awaitStep(Dashboard d, String run, int step) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        JsonNode runs = null;
        while (System.nanoTime() < end) {
            runs = DashboardFixture.JSON.readTree(get(d.url() + "api/runs"));
            for (JsonNode r : runs.get("runs")) if (r.get("name").asText().equals(run) && r.get("step").asInt() >= step) return runs;
            Thread.sleep(100);
        }
        throw new AssertionError("run " + run + " never reached step " + step + ": " + runs);
    }

    @Test
    void printsItsAddressAndListsTheRunAndItsRecords() throws Exception {
        Path run = DashboardFixture.run(tmp.resolve("r1"), 12);
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        Dashboard d = start(run, 0, new PrintStream(printed, true, StandardCharsets.UTF_8));
        assertEquals("dashboard: http://127.0.0.1:" + d.port() + "/\n", printed.toString(StandardCharsets.UTF_8));
        JsonNode runs = awaitStep(d, "r1", 12);
        assertEquals(false, runs.get("experiment").asBoolean());
        JsonNode r = runs.get("runs").get(0);
        assertEquals("moelora", r.get("adapter").asText());
        assertEquals(60, r.get("steps").asInt());
        assertEquals(12 * 4, r.get("records").get("routing").asInt());

        JsonNode routing = DashboardFixture.JSON.readTree(get(d.url() + "api/runs/r1/records/routing?from=44"));
        assertEquals(4, routing.size(), "records 44..47 of 48");
        assertEquals(12, routing.get(0).get("step").asInt());
        assertTrue(get(d.url()).contains("<script src=\"app.js\"></script>"));
        assertTrue(get(d.url() + "app.js").contains("EventSource"));
        JsonNode view = DashboardFixture.JSON.readTree(get(d.url() + "api/view?run=r1&step=5"));
        assertEquals(5, view.get("step").asInt());
        assertTrue(view.get("fragments").get("heatmaps").asText().contains("data-step=\"5\""));
        HttpResponse<String> missing = HTTP.send(HttpRequest.newBuilder(URI.create(d.url() + "api/view?run=nope")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(404, missing.statusCode());
    }

    @Test
    void theEventStreamCarriesEveryNewRecordAndAResetWhenAFileIsRewound() throws Exception {
        Path run = DashboardFixture.run(tmp.resolve("r1"), 3);
        Dashboard d = start(run, 0, new PrintStream(new ByteArrayOutputStream()));
        awaitStep(d, "r1", 3);
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        CompletableFuture<HttpResponse<Stream<String>>> stream = HTTP.sendAsync(
                HttpRequest.newBuilder(URI.create(d.url() + "events")).header("Accept", "text/event-stream").build(), HttpResponse.BodyHandlers.ofLines());
        HttpResponse<Stream<String>> response = stream.get(10, TimeUnit.SECONDS);
        Thread reader = new Thread(() -> {
            try {
                response.body().forEach(lines::add);
            } catch (java.io.UncheckedIOException closedByTheTest) {
                // the stream ends when the test closes it
            }
        }, "sse-reader");
        reader.setDaemon(true);
        reader.start();
        assertEquals("hello", awaitLine(lines, l -> l.startsWith("event:")).substring("event:".length()).trim());

        DashboardFixture.append(run, 4, 4);
        int routingRecords = 0;
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (routingRecords < 4 && System.nanoTime() < end) {
            String data = awaitLine(lines, l -> l.startsWith("data:") && l.contains("\"stream\":\"routing\""));
            JsonNode event = DashboardFixture.JSON.readTree(data.substring("data:".length()));
            assertEquals(4, event.get("record").get("step").asInt());
            assertEquals(12 + routingRecords, event.get("index").asInt(), "indices continue the stream's count");
            routingRecords++;
        }
        assertEquals(4, routingRecords, "one event per routing line of the new step");

        Files.write(run.resolve("metrics.jsonl"), Files.readAllLines(run.resolve("metrics.jsonl")).subList(0, 2));
        String reset = awaitLine(lines, l -> l.startsWith("data:") && l.contains("\"stream\":\"metrics\"") && !l.contains("\"record\""));
        JsonNode event = DashboardFixture.JSON.readTree(reset.substring("data:".length()));
        assertEquals("r1", event.get("run").asText());
        assertTrue(event.get("generation").asInt() > 0);
        response.body().close();
    }

    private static String awaitLine(BlockingQueue<String> lines, java.util.function.Predicate<String> wanted) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < end) {
            String line = lines.poll(100, TimeUnit.MILLISECONDS);
            if (line != null && wanted.test(line)) return line;
        }
        throw new AssertionError("no such event line within 10 s");
    }

    @Test
    void aBusyPortMovesToTheNextFreeOne() throws Exception {
        Path run = DashboardFixture.run(tmp.resolve("r1"), 1);
        try (ServerSocket busy = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            Dashboard d = start(run, busy.getLocalPort(), new PrintStream(new ByteArrayOutputStream()));
            assertNotEquals(busy.getLocalPort(), d.port());
            assertTrue(d.port() > busy.getLocalPort() && d.port() < busy.getLocalPort() + Dashboard.PORT_TRIES, "port " + d.port());
            assertTrue(get(d.url()).contains("moelora dashboard"));
        }
    }

    @Test
    void startIfEnabledReadsTheDashboardKeysAndPortZeroTurnsItOff() throws Exception {
        Path run = DashboardFixture.run(tmp.resolve("r1"), 1);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
        assertNull(Dashboard.startIfEnabled(RunConfig.load(null, List.of("dashboard.port=0")), run, quiet));
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            int port = probe.getLocalPort();
            probe.close();
            dashboard = Dashboard.startIfEnabled(RunConfig.load(null, List.of("dashboard.port=" + port, "dashboard.host=127.0.0.1")), run, quiet);
            assertNotNull(dashboard);
            assertEquals("http://127.0.0.1:" + dashboard.port() + "/", dashboard.url());
        }
    }
}
