package dev.moelora.cluster.dashboard;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.observe.RecordStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the dashboard knows of one run: its records (docs/records.md) parsed into the few numbers
 * the views and metrics use, indexed by step, plus the whole-file state next to them (placement,
 * scores, the adapter of config.conf). A step recorded twice (a resumed run repeats the steps after
 * its checkpoint) keeps its newest lines. Written by the workspace's poller only; everyone else
 * reads it while holding its monitor ({@code synchronized (run)}). It never touches a file.
 */
final class RunRecords {
    private static final Pattern LAYER = Pattern.compile("(?:^|.*?\\.)layers?\\.(\\d+)\\.(.+)");

    /** A metrics line. Absent doubles are NaN. */
    record Step(int step, int steps, double loss, double taskLoss, double auxLoss, double lr, double gradNorm,
                long tokens, double seconds, double tokensPerSecond) {}

    /** A routing line of one (step, module); routed = tokens per expert (E). Absent doubles are NaN, absent tokens -1. */
    record Routing(int step, String module, int layer, String kind, long tokens, long[] routed, double gateEntropy,
                   double effectiveExperts, long dropped, double balanceLoss, double contrastiveLoss, double meanCosine) {
        long total() {
            long t = 0;
            for (long r : routed) t += r;
            return t;
        }

        double share(int expert) {
            long t = total();
            return t == 0 ? 0 : (double) routed[expert] / t;
        }

        /** max / mean of the routed tokens (1 = even); NaN when nothing was routed. */
        double imbalance() {
            long t = total(), max = 0;
            for (long r : routed) max = Math.max(max, r);
            return t == 0 ? Double.NaN : max / ((double) t / routed.length);
        }

        /** Coefficient of variation of the routed tokens: population standard deviation / mean. */
        double cv() {
            double mean = (double) total() / routed.length;
            if (mean == 0) return Double.NaN;
            double var = 0;
            for (long r : routed) var += (r - mean) * (r - mean);
            return Math.sqrt(var / routed.length) / mean;
        }

        /** Experts each token went to: Σ routed / tokens, or {@code fallback} when the line has no token count. */
        double topK(double fallback) {
            return tokens > 0 ? (double) total() / tokens : fallback;
        }
    }

    /** One device slot of an expert node in a nodes line. */
    record Device(int device, List<Integer> experts, double computeSeconds) {}

    /** A nodes line of one (step, node). */
    record NodeStep(int step, String node, String role, List<Device> devices, double computeSeconds, double waitSeconds,
                    double transferSeconds, long bytesSent, long bytesReceived, long framesSent, long framesReceived,
                    Map<String, Long> framesDropped) {}

    /** An events line; step -1 and empty strings where the line has none. */
    record Event(String time, String event, int step, String node, String reason, String checkpoint, double seconds) {}

    /** A node of placement.json: health up, unreachable, recovering or lost; experts as (expert, device). */
    record PlacedNode(String node, String role, String health, int devices, List<int[]> experts) {}

    /** A task's score from eval.json. */
    record Score(String task, double accuracy) {}

    private final String name;
    private final Path dir;
    private final TreeMap<Integer, Step> steps = new TreeMap<>();
    private final TreeMap<Integer, Map<String, Routing>> routing = new TreeMap<>();
    private final TreeMap<Integer, Map<String, NodeStep>> nodes = new TreeMap<>();
    private final List<Event> events = new ArrayList<>();
    private final EnumMap<RecordStream, Integer> counts = new EnumMap<>(RecordStream.class);
    private final Map<String, Integer> malformed = new TreeMap<>();
    private List<PlacedNode> placement;
    private List<Score> scores;
    private String adapter = "";
    private int configuredSteps;
    private double configuredTopK = Double.NaN;
    private int generation;

    RunRecords(String name, Path dir) {
        this.name = name;
        this.dir = dir;
        for (RecordStream s : RecordStream.values()) counts.put(s, 0);
    }

    String name() { return name; }
    Path dir() { return dir; }

    /** Counts the resets of any stream: views and clients rendered at another generation are stale. */
    synchronized int generation() { return generation; }

    /** Records of a stream accepted since its file was last read from the start. */
    synchronized int count(RecordStream stream) { return counts.get(stream); }

    /** Takes a record line; IllegalArgumentException (saying what is wrong) when it is not a record of its stream. */
    synchronized void add(RecordStream stream, ObjectNode line) {
        switch (stream) {
            case METRICS -> {
                Step s = step(line);
                steps.put(s.step(), s);
            }
            case ROUTING -> {
                Routing r = routing(line);
                Map<String, Routing> atStep = routing.computeIfAbsent(r.step(), k -> new LinkedHashMap<>());
                atStep.put(r.module(), r);
            }
            case NODES -> {
                NodeStep n = nodeStep(line);
                nodes.computeIfAbsent(n.step(), k -> new LinkedHashMap<>()).put(n.node(), n);
            }
            case EVENTS -> events.add(event(line));
        }
        counts.merge(stream, 1, Integer::sum);
    }

    /** Forgets a stream's records: its file is being read again from the start. */
    synchronized void clear(RecordStream stream) {
        switch (stream) {
            case METRICS -> steps.clear();
            case ROUTING -> routing.clear();
            case NODES -> nodes.clear();
            case EVENTS -> events.clear();
        }
        counts.put(stream, 0);
        generation++;
    }

    /** Validates a line as a record of its stream without keeping it (the records API reads files again). */
    static void check(RecordStream stream, ObjectNode line) {
        switch (stream) {
            case METRICS -> step(line);
            case ROUTING -> routing(line);
            case NODES -> nodeStep(line);
            case EVENTS -> event(line);
        }
    }

    synchronized void malformed(String file, int lines) {
        if (lines == 0) malformed.remove(file);
        else malformed.put(file, lines);
    }

    /** Malformed lines per file name, as the tails counted them. */
    synchronized Map<String, Integer> malformed() { return Map.copyOf(malformed); }

    synchronized void placement(List<PlacedNode> nodes) {
        this.placement = nodes;
    }

    synchronized void scores(List<Score> scores) { this.scores = scores; }

    synchronized void config(String adapter, int steps, double topK) {
        this.adapter = adapter;
        this.configuredSteps = steps;
        this.configuredTopK = topK;
    }

    // ----- reads: call while holding the monitor; the collections are live views

    NavigableMap<Integer, Step> steps() { return Collections.unmodifiableNavigableMap(steps); }
    NavigableMap<Integer, Map<String, Routing>> routing() { return Collections.unmodifiableNavigableMap(routing); }
    NavigableMap<Integer, Map<String, NodeStep>> nodes() { return Collections.unmodifiableNavigableMap(nodes); }
    List<Event> events() { return Collections.unmodifiableList(events); }
    /** null when the run has no placement.json. */
    List<PlacedNode> placement() { return placement; }
    /** null when the run has no eval.json yet. */
    List<Score> scores() { return scores; }
    String adapter() { return adapter; }
    /** top-k of config.conf; NaN when unknown. */
    double configuredTopK() { return configuredTopK; }

    /** train.steps: from the newest metrics line, else config.conf; 0 when unknown. */
    int plannedSteps() {
        return steps.isEmpty() ? configuredSteps : steps.lastEntry().getValue().steps();
    }

    /** The newest step finished (metrics, else routing); 0 before the first. */
    int lastStep() {
        int s = steps.isEmpty() ? 0 : steps.lastKey();
        return Math.max(s, routing.isEmpty() ? 0 : routing.lastKey());
    }

    /** Modules in the order they first appear, over every step. */
    List<String> modules() {
        LinkedHashMap<String, Boolean> seen = new LinkedHashMap<>();
        for (Map<String, Routing> atStep : routing.values()) for (String m : atStep.keySet()) seen.putIfAbsent(m, true);
        return new ArrayList<>(seen.keySet());
    }

    /**
     * The newest step whose routing lines are all there (as many modules as the fullest step): a
     * step being written shows once its last module arrived. -1 without routing records.
     */
    int newestCompleteRoutingStep() {
        int full = 0;
        for (Map<String, Routing> m : routing.values()) full = Math.max(full, m.size());
        for (Map.Entry<Integer, Map<String, Routing>> e : routing.descendingMap().entrySet()) {
            if (e.getValue().size() == full) return e.getKey();
        }
        return -1;
    }

    /** The routing step at or before {@code step} (the first one when none is), -1 without routing records. */
    int routingStepAtOrBefore(int step) {
        if (routing.isEmpty()) return -1;
        Integer s = routing.floorKey(step);
        return s != null ? s : routing.firstKey();
    }

    int recoveries() {
        int n = 0;
        for (Event e : events) if (e.event().equals("recovered")) n++;
        return n;
    }

    // ----- parsing

    /** The layer of a module name: the number after "layer." or "layers."; -1 when it has none. */
    static int layerOf(String module) {
        Matcher m = LAYER.matcher(module);
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** The module name without its "...layer(s).N." prefix: what a heatmap groups by. */
    static String kindOf(String module) {
        Matcher m = LAYER.matcher(module);
        return m.matches() ? m.group(2) : module;
    }

    private static Step step(ObjectNode l) {
        int step = requiredInt(l, "step");
        double tokens = number(l, "tokens"), seconds = number(l, "seconds");
        double perSecond = l.has("tokens_per_s") ? number(l, "tokens_per_s") : tokens / seconds;
        return new Step(step, l.path("steps").asInt(0), number(l, "loss"), number(l, "task_loss"), number(l, "aux_loss"),
                number(l, "lr"), number(l, "grad_norm"), Double.isNaN(tokens) ? -1 : (long) tokens, seconds, perSecond);
    }

    private static Routing routing(ObjectNode l) {
        int step = requiredInt(l, "step");
        JsonNode moduleNode = l.get("module");
        if (moduleNode == null || !moduleNode.isTextual()) throw new IllegalArgumentException("no 'module' name");
        String module = moduleNode.asText();
        JsonNode routedNode = l.get("routed_tokens");
        if (routedNode == null || !routedNode.isArray() || routedNode.isEmpty()) throw new IllegalArgumentException("no 'routed_tokens' array");
        long[] routed = new long[routedNode.size()];
        for (int e = 0; e < routed.length; e++) {
            if (!routedNode.get(e).isNumber()) throw new IllegalArgumentException("'routed_tokens' holds a non-number");
            routed[e] = routedNode.get(e).asLong();
        }
        int layer = l.has("layer") ? l.get("layer").asInt() : layerOf(module);
        String kind = l.hasNonNull("kind") ? l.get("kind").asText() : kindOf(module);
        double effective = l.has("effective_experts") ? number(l, "effective_experts") : effectiveExperts(routed);
        return new Routing(step, module, layer, kind, l.path("tokens").asLong(-1), routed, number(l, "gate_entropy"), effective,
                l.path("dropped_tokens").asLong(0), number(l, "balance_loss"), number(l, "contrastive_loss"),
                meanOffDiagonal(l.get("mean_output_cosine")));
    }

    /** exp of the entropy of the shares routed / Σ routed (docs/records.md); NaN when nothing was routed. */
    static double effectiveExperts(long[] routed) {
        long total = 0;
        for (long r : routed) total += r;
        if (total == 0) return Double.NaN;
        double h = 0;
        for (long r : routed) {
            if (r == 0) continue;
            double p = (double) r / total;
            h -= p * Math.log(p);
        }
        return Math.exp(h);
    }

    /** Mean cosine between different experts' mean outputs; NaN without the matrix. */
    private static double meanOffDiagonal(JsonNode matrix) {
        if (matrix == null || !matrix.isArray() || matrix.size() < 2) return Double.NaN;
        double sum = 0;
        int n = 0;
        for (int i = 0; i < matrix.size(); i++) {
            JsonNode row = matrix.get(i);
            for (int j = 0; j < row.size(); j++) {
                if (i == j) continue;
                sum += row.get(j).asDouble();
                n++;
            }
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    private static NodeStep nodeStep(ObjectNode l) {
        int step = requiredInt(l, "step");
        String node = l.path("node").asText("");
        if (node.isEmpty()) throw new IllegalArgumentException("no 'node' name");
        List<Device> devices = new ArrayList<>();
        for (JsonNode d : l.path("devices")) {
            List<Integer> experts = new ArrayList<>();
            for (JsonNode e : d.path("experts")) experts.add(e.asInt());
            devices.add(new Device(d.path("device").asInt(), experts, number(d, "compute_s")));
        }
        Map<String, Long> dropped = new TreeMap<>();
        for (Map.Entry<String, JsonNode> e : l.path("frames_dropped").properties()) dropped.put(e.getKey(), e.getValue().asLong());
        return new NodeStep(step, node, l.path("role").asText(""), devices, number(l, "compute_s"), number(l, "wait_s"),
                number(l, "transfer_s"), l.path("bytes_sent").asLong(0), l.path("bytes_received").asLong(0),
                l.path("frames_sent").asLong(0), l.path("frames_received").asLong(0), dropped);
    }

    private static Event event(ObjectNode l) {
        String event = l.path("event").asText("");
        if (event.isEmpty()) throw new IllegalArgumentException("no 'event'");
        return new Event(l.path("time").asText(""), event, l.path("step").asInt(-1), l.path("node").asText(""),
                l.path("reason").asText(""), l.path("checkpoint").asText(""), number(l, "seconds"));
    }

    /** placement.json: {"nodes": [{"node", "role", "health", "devices", "experts": [{"expert", "device"}]}]}. */
    static List<PlacedNode> parsePlacement(JsonNode json) {
        JsonNode list = json.get("nodes");
        if (list == null || !list.isArray()) throw new IllegalArgumentException("no 'nodes' array");
        List<PlacedNode> out = new ArrayList<>();
        for (JsonNode n : list) {
            String node = n.path("node").asText("");
            if (node.isEmpty()) throw new IllegalArgumentException("a node without 'node' name");
            List<int[]> experts = new ArrayList<>();
            for (JsonNode e : n.path("experts")) experts.add(new int[] {e.path("expert").asInt(), e.path("device").asInt(0)});
            JsonNode devices = n.path("devices");
            int deviceCount = devices.isArray() ? devices.size() : devices.asInt(0);
            out.add(new PlacedNode(node, n.path("role").asText(""), n.path("health").asText("unknown"), deviceCount, experts));
        }
        return out;
    }

    /** eval.json: [{"task", "accuracy", ...}]. */
    static List<Score> parseScores(JsonNode json) {
        if (!json.isArray()) throw new IllegalArgumentException("not an array of task scores");
        List<Score> out = new ArrayList<>();
        for (JsonNode s : json) out.add(new Score(s.path("task").asText("?"), s.path("accuracy").asDouble(Double.NaN)));
        return out;
    }

    private static int requiredInt(JsonNode l, String field) {
        JsonNode v = l.get(field);
        if (v == null || !v.canConvertToInt()) throw new IllegalArgumentException("no integer '" + field + "'");
        return v.asInt();
    }

    private static double number(JsonNode l, String field) {
        JsonNode v = l.get(field);
        return v != null && v.isNumber() ? v.asDouble() : Double.NaN;
    }
}
