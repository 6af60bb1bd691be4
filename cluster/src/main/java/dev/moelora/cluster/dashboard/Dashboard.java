package dev.moelora.cluster.dashboard;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.completeOK;
import static org.apache.pekko.http.javadsl.server.Directives.completeWithFuture;
import static org.apache.pekko.http.javadsl.server.Directives.concat;
import static org.apache.pekko.http.javadsl.server.Directives.get;
import static org.apache.pekko.http.javadsl.server.Directives.parameterMap;
import static org.apache.pekko.http.javadsl.server.Directives.path;
import static org.apache.pekko.http.javadsl.server.Directives.pathPrefix;
import static org.apache.pekko.http.javadsl.server.Directives.pathSingleSlash;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.observe.RecordStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.marshalling.sse.EventStreamMarshalling;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpCharsets;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.CacheControl;
import org.apache.pekko.http.javadsl.model.headers.CacheDirectives;
import org.apache.pekko.http.javadsl.model.sse.ServerSentEvent;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.BindFailedException;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.OverflowStrategy;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.javadsl.BroadcastHub;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The live dashboard of a run directory or an experiment directory, built on the files alone: a
 * poller tails them every 250 ms ({@link Workspace}); a Pekko HTTP server serves the page and its
 * assets from the jar, a JSON API (the runs, each run's records so far, the rendered panels), every
 * new record as a server-sent event on {@code /events} (and a reset when a file was rewound), and
 * the records as Prometheus metrics on {@code /metrics}. The same server serves a live run, a
 * finished one and an experiment. Reading files and rendering run on the dashboard's own threads,
 * never on the actor system's dispatcher. It never writes into the directory it watches.
 *
 * <p>Routes: {@code /}, {@code /app.js}, {@code /style.css}, {@code /api/runs},
 * {@code /api/runs/RUN/records/STREAM?from=N} (STREAM: metrics, routing, nodes, events),
 * {@code /api/view?run=RUN[&step=N][&dead=N][&collapse=F][&cosine=C]},
 * {@code /api/heatmap?run=RUN&step=N}, {@code /api/comparison}, {@code /events}, {@code /metrics}.
 */
public final class Dashboard implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Dashboard.class);
    static final Duration POLL_INTERVAL = Duration.ofMillis(250);
    /** Ports tried when the configured one is busy: it and the next ones. */
    static final int PORT_TRIES = 20;
    private static final int EVENT_BUFFER = 4096;
    private static final Duration HEARTBEAT = Duration.ofSeconds(10), BIND_TIMEOUT = Duration.ofSeconds(15);
    private static final ContentType.WithCharset JAVASCRIPT = ContentTypes.create(MediaTypes.APPLICATION_JAVASCRIPT, HttpCharsets.UTF_8);
    private static final ContentType.WithCharset CSS = ContentTypes.create(MediaTypes.TEXT_CSS, HttpCharsets.UTF_8);

    private final Workspace workspace;
    private final DashboardMetrics metrics;
    private final ActorSystem<?> system;
    private final boolean ownSystem;
    private final ScheduledExecutorService poller;
    private final ExecutorService workers;
    private final BoundedSourceQueue<ServerSentEvent> events;
    private final Source<ServerSentEvent, NotUsed> broadcast;
    private final AtomicBoolean overflowed = new AtomicBoolean();
    private final ServerBinding binding;
    private final String url;

    private Dashboard(ActorSystem<?> system, boolean ownSystem, Path root, String host, int port) {
        this.system = system;
        this.ownSystem = ownSystem;
        Pair<BoundedSourceQueue<ServerSentEvent>, Source<ServerSentEvent, NotUsed>> hub = Source.<ServerSentEvent>queue(EVENT_BUFFER)
                .toMat(BroadcastHub.of(ServerSentEvent.class, 256), Keep.both()).run(system);
        this.events = hub.first();
        this.broadcast = hub.second();
        // a hub without subscribers holds its producer back: one subscriber always drains it
        broadcast.runWith(Sink.ignore(), system);
        this.workspace = new Workspace(root, this::publish);
        this.metrics = new DashboardMetrics(workspace);
        this.workers = Executors.newFixedThreadPool(2, threads("moelora-dashboard-render"));
        this.poller = Executors.newSingleThreadScheduledExecutor(threads("moelora-dashboard-tail"));
        poller.scheduleWithFixedDelay(this::poll, 0, POLL_INTERVAL.toMillis(), TimeUnit.MILLISECONDS);
        ServerBinding bound;
        try {
            bound = bind(host, port);
        } catch (RuntimeException e) {
            stopThreads();
            events.complete();
            throw e;
        }
        this.binding = bound;
        String shownHost = host.contains(":") ? "[" + host + "]" : host;
        this.url = "http://" + shownHost + ":" + binding.localAddress().getPort() + "/";
    }

    /**
     * Serves root (a run directory or an experiment directory) on host:port with its own actor
     * system until closed; port 0 takes any free port, a busy port the next free one. Prints
     * "dashboard: URL" to out.
     */
    public static Dashboard start(Path root, String host, int port, PrintStream out) {
        ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "moelora-dashboard", ownSystemConfig());
        try {
            return announce(new Dashboard(system, true, root, host, port), out);
        } catch (RuntimeException e) {
            system.terminate();
            throw e;
        }
    }

    /** As {@link #start(Path, String, int, PrintStream)} on a caller's actor system (left running at close). */
    public static Dashboard start(ActorSystem<?> system, Path root, String host, int port, PrintStream out) {
        return announce(new Dashboard(system, false, root, host, port), out);
    }

    /**
     * The dashboard a run's configuration asks for ({@code dashboard.host}, {@code dashboard.port}),
     * or null when dashboard.port = 0 (a try-with-resources skips a null resource).
     */
    public static Dashboard startIfEnabled(RunConfig config, Path root, PrintStream out) {
        int port = config.integer("dashboard.port");
        return port == 0 ? null : start(root, config.string("dashboard.host"), port, out);
    }

    /** As {@link #startIfEnabled(RunConfig, Path, PrintStream)} on a caller's actor system. */
    public static Dashboard startIfEnabled(ActorSystem<?> system, RunConfig config, Path root, PrintStream out) {
        int port = config.integer("dashboard.port");
        return port == 0 ? null : start(system, root, config.string("dashboard.host"), port, out);
    }

    private static Dashboard announce(Dashboard d, PrintStream out) {
        out.println("dashboard: " + d.url());
        out.flush();
        return d;
    }

    /** Where the page is, e.g. http://127.0.0.1:8470/. */
    public String url() {
        return url;
    }

    public int port() {
        return binding.localAddress().getPort();
    }

    /** Stops tailing, closes the server and its event streams, and the actor system when it is the dashboard's own. */
    @Override
    public void close() {
        stopThreads();
        try {
            binding.terminate(Duration.ofSeconds(2)).toCompletableFuture().get(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            LOG.warn("dashboard: the server did not stop cleanly: {}", e.toString());
        }
        events.complete();
        if (ownSystem) {
            system.terminate();
            try {
                system.getWhenTerminated().toCompletableFuture().get(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | TimeoutException e) {
                LOG.warn("dashboard: its actor system did not stop within 10 s: {}", e.toString());
            }
        }
    }

    private void stopThreads() {
        poller.shutdownNow();
        try {
            if (!poller.awaitTermination(5, TimeUnit.SECONDS)) LOG.warn("dashboard: the file poller did not stop within 5 s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        workers.shutdownNow();
    }

    private static Config ownSystemConfig() {
        Config mine = ConfigFactory.parseString(String.join("\n",
                "pekko.actor.provider = local",
                // a dashboard never keeps a JVM alive, and close() (not a JVM shutdown hook) stops it
                "pekko.daemonic = on",
                "pekko.coordinated-shutdown.run-by-jvm-shutdown-hook = off",
                "pekko.http.server.server-header = moelora-dashboard",
                // an idle browser tab keeps its event stream: heartbeats, not timeouts, keep it alive
                "pekko.http.server.idle-timeout = 120s"));
        return mine.withFallback(ConfigFactory.parseResources(Dashboard.class.getClassLoader(), "moelora-actors.conf")).withFallback(ConfigFactory.load());
    }

    private static ThreadFactory threads(String name) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, name + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    private void poll() {
        try {
            workspace.poll();
        } catch (RuntimeException e) {
            // the poller must survive a bad file; the failure is logged with its cause and retried next time
            LOG.warn("dashboard: polling {} failed: {}", workspace.root(), e.toString(), e);
        }
    }

    private ServerBinding bind(String host, int port) {
        int tries = port == 0 ? 1 : PORT_TRIES;
        BindException last = null;
        for (int i = 0; i < tries; i++) {
            int p = port == 0 ? 0 : port + i;
            // probe first: a failed bind inside Pekko logs a stack trace at ERROR for what is routine here
            if (p != 0 && !free(host, p)) {
                last = new BindException(host + ":" + p + " is busy");
                continue;
            }
            try {
                return Http.get(system).newServerAt(host, p).bind(routes()).toCompletableFuture().get(BIND_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof BindFailedException || e.getCause() instanceof BindException)) {
                    throw new IllegalStateException("dashboard: cannot serve on " + host + ":" + p + ": " + e.getCause(), e.getCause());
                }
                last = new BindException(host + ":" + p + " is busy");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("dashboard: interrupted while binding " + host + ":" + p, e);
            } catch (TimeoutException e) {
                throw new IllegalStateException("dashboard: binding " + host + ":" + p + " took longer than " + BIND_TIMEOUT.toSeconds() + " s", e);
            }
        }
        throw new IllegalStateException("dashboard: no free port in " + port + ".." + (port + tries - 1) + " on " + host, last);
    }

    private static boolean free(String host, int port) {
        try (ServerSocket probe = new ServerSocket()) {
            probe.bind(new InetSocketAddress(host, port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    // ----- server-sent events

    private void publish(Workspace.Change change) {
        String type, data;
        try {
            if (change instanceof Workspace.Appended a) {
                type = "record";
                data = "{\"run\":" + quote(a.run()) + ",\"stream\":" + quote(stream(a.stream())) + ",\"index\":" + a.index()
                        + ",\"generation\":" + a.generation() + ",\"record\":" + a.line() + "}";
            } else if (change instanceof Workspace.Rewound r) {
                type = "reset";
                data = "{\"run\":" + quote(r.run()) + ",\"stream\":" + quote(stream(r.stream())) + ",\"generation\":" + r.generation() + "}";
            } else if (change instanceof Workspace.FileChanged f) {
                type = "file";
                data = "{\"run\":" + quote(f.run()) + ",\"file\":" + quote(f.file()) + "}";
            } else if (change instanceof Workspace.RunFound f) {
                type = "run";
                data = "{\"run\":" + quote(f.run()) + "}";
            } else {
                throw new IllegalArgumentException("unknown change " + change);
            }
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
        // a client that missed events starts again from the API: after an overflow the next event is a reset of everything
        if (overflowed.get() && offer(ServerSentEvent.create("{\"run\":\"*\",\"reason\":\"events were dropped\"}", "reset"))) overflowed.set(false);
        if (!offer(ServerSentEvent.create(data, type))) overflowed.set(true);
    }

    /** Offers an event to the broadcast; false when it was dropped (full buffer) or the stream has ended. */
    private boolean offer(ServerSentEvent event) {
        QueueOfferResult result = events.offer(event);
        return result.isEnqueued();
    }

    private Source<ServerSentEvent, NotUsed> eventStream() {
        return Source.single(ServerSentEvent.create("{\"root\":" + quoteUnchecked(workspace.root().toString()) + "}", "hello"))
                .concat(broadcast.buffer(EVENT_BUFFER, OverflowStrategy.dropHead()))
                .keepAlive(HEARTBEAT, ServerSentEvent::heartbeat);
    }

    static String stream(RecordStream s) {
        return s.name().toLowerCase(Locale.ROOT);
    }

    private static String quote(String s) throws JsonProcessingException {
        return JsonlTail.JSON.writeValueAsString(s);
    }

    private static String quoteUnchecked(String s) {
        try {
            return quote(s);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    // ----- routes

    private Route routes() {
        return concat(
                pathSingleSlash(() -> get(() -> complete(asset("index.html", ContentTypes.TEXT_HTML_UTF8)))),
                path("app.js", () -> get(() -> complete(asset("app.js", JAVASCRIPT)))),
                path("style.css", () -> get(() -> complete(asset("style.css", CSS)))),
                path("events", () -> get(() -> completeOK(eventStream(), EventStreamMarshalling.toEventStream()))),
                path("metrics", () -> get(() -> async(() -> HttpResponse.create()
                        .withEntity(HttpEntities.create(ContentTypes.TEXT_PLAIN_UTF8, metrics.scrape()))))),
                pathPrefix("api", () -> concat(
                        path("runs", () -> get(() -> async(this::runs))),
                        path(segment("runs").slash(segment()).slash("records").slash(segment()),
                                (run, stream) -> get(() -> parameterMap(p -> async(() -> records(run, stream, p))))),
                        path("view", () -> get(() -> parameterMap(p -> async(() -> view(p, false))))),
                        path("heatmap", () -> get(() -> parameterMap(p -> async(() -> view(p, true))))),
                        path("comparison", () -> get(() -> async(this::comparison))))));
    }

    /** Runs the work on the dashboard's threads, off the HTTP dispatcher. */
    private Route async(Supplier<HttpResponse> work) {
        return completeWithFuture(CompletableFuture.supplyAsync(work, workers));
    }

    private static HttpResponse asset(String name, ContentType.NonBinary type) {
        return HttpResponse.create().withEntity(HttpEntities.create(type, Report.asset(name)))
                .addHeader(CacheControl.create(CacheDirectives.NO_CACHE));
    }

    private static HttpResponse json(Object body) {
        try {
            String text = body instanceof String s ? s : JsonlTail.JSON.writeValueAsString(body);
            return HttpResponse.create().withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, text))
                    .addHeader(CacheControl.create(CacheDirectives.NO_CACHE));
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static HttpResponse error(int status, String message) {
        ObjectNode o = JsonlTail.JSON.createObjectNode().put("error", message);
        return json(o).withStatus(StatusCodes.get(status));
    }

    private HttpResponse runs() {
        ObjectNode out = JsonlTail.JSON.createObjectNode();
        out.put("root", workspace.root().toString());
        out.put("experiment", workspace.experiment());
        out.put("comparison", workspace.comparison() != null);
        ArrayNode list = out.putArray("runs");
        for (RunRecords run : workspace.runs()) {
            synchronized (run) {
                ObjectNode r = list.addObject();
                r.put("name", run.name());
                r.put("dir", run.dir().toString());
                r.put("adapter", run.adapter());
                r.put("status", Views.status(run));
                r.put("step", run.lastStep());
                r.put("steps", run.plannedSteps());
                r.put("generation", run.generation());
                ObjectNode counts = r.putObject("records");
                for (RecordStream s : RecordStream.values()) counts.put(stream(s), run.count(s));
                ObjectNode bad = r.putObject("malformed");
                run.malformed().forEach(bad::put);
            }
        }
        return json(out);
    }

    /** A stream's records so far, read from its file again (index from 0, as in the events), from index {@code from}. */
    private HttpResponse records(String name, String streamName, Map<String, String> params) {
        RunRecords run = workspace.run(name);
        if (run == null) return error(404, "no run '" + name + "'");
        RecordStream stream = null;
        for (RecordStream s : RecordStream.values()) if (stream(s).equals(streamName)) stream = s;
        if (stream == null) return error(404, "no stream '" + streamName + "' (metrics, routing, nodes, events)");
        int from;
        try {
            from = Integer.parseInt(params.getOrDefault("from", "0"));
        } catch (NumberFormatException e) {
            return error(400, "from must be an integer");
        }
        JsonlTail.Poll poll;
        try {
            poll = new JsonlTail(run.dir().resolve(stream.file()), true).poll();
        } catch (IOException e) {
            return error(500, run.dir().resolve(stream.file()) + ": " + e.getMessage());
        }
        List<String> lines = new ArrayList<>();
        int index = 0;
        for (JsonlTail.Line line : poll.lines()) {
            try {
                RunRecords.check(stream, line.record());
            } catch (IllegalArgumentException e) {
                continue;
            }
            if (index++ >= from) lines.add(line.text());
        }
        return json("[" + String.join(",\n", lines) + "]");
    }

    private HttpResponse view(Map<String, String> params, boolean heatmapOnly) {
        RunRecords run = workspace.run(params.getOrDefault("run", ""));
        if (run == null) return error(404, "no run '" + params.getOrDefault("run", "") + "'");
        int step;
        Alarms.Settings settings;
        try {
            step = Integer.parseInt(params.getOrDefault("step", "-1"));
            settings = new Alarms.Settings(Integer.parseInt(params.getOrDefault("dead", "" + Alarms.Settings.DEFAULT.deadSteps())),
                    Double.parseDouble(params.getOrDefault("collapse", "" + Alarms.Settings.DEFAULT.collapseFactor())),
                    Double.parseDouble(params.getOrDefault("cosine", "" + Alarms.Settings.DEFAULT.cosine())));
        } catch (NumberFormatException e) {
            return error(400, "step and dead are integers, collapse and cosine numbers: " + e.getMessage());
        }
        Views.RunView v = heatmapOnly ? Views.heatmapsOnly(run, step, settings) : Views.run(run, step, settings);
        ObjectNode out = JsonlTail.JSON.createObjectNode();
        out.put("run", run.name());
        out.put("generation", v.generation());
        out.put("step", v.step());
        ArrayNode steps = out.putArray("steps");
        for (int s : v.routingSteps()) steps.add(s);
        ObjectNode fragments = out.putObject("fragments");
        fragments.put("heatmaps", v.heatmaps());
        if (!heatmapOnly) {
            fragments.put("summary", v.summary());
            fragments.put("alarms", v.alarms());
            fragments.put("routing", v.routing());
            fragments.put("training", v.training());
            fragments.put("placement", v.placement());
        }
        return json(out);
    }

    private HttpResponse comparison() {
        ObjectNode out = JsonlTail.JSON.createObjectNode();
        out.put("experiment", workspace.experiment());
        out.put("html", workspace.experiment() ? Views.comparison(workspace) : "");
        return json(out);
    }
}
