package dev.moelora.cluster.tensorboard;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.observe.JsonlRecorder;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.cluster.observe.RunRecorder;
import dev.moelora.model.moelora.RoutingStats;
import dev.moelora.model.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small run's records, written the way a run writes them (the JSONL files and TensorBoard side by
 * side), and what TensorBoard must show for them worked out again from the JSONL files, written
 * from docs/records.md rather than from the recorder. The values are chosen to be awkward: exactly
 * representable ones, ones float32 rounds (0.1, 1/3), a float32 subnormal (1e-40), one beyond
 * float32's range (1e39), NaN (a diverged loss, a contrastive loss after evaluation), a step beyond
 * 32 bits, a count above 2^24, an expert without tokens, a module without any.
 */
final class RecordedRun {
    static final ObjectMapper JSON = JsonMapper.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();
    static final Instant START = Instant.ofEpochSecond(1_700_000_000L, 250_000_000);
    static final Clock CLOCK = Clock.fixed(START, ZoneOffset.UTC);
    static final String QUERY = "encoder.layer.3.attention.self.query";
    static final String VALUE = "encoder.layer.3.attention.self.value";
    static final long LONG_STEP = 5_000_000_000L;

    record Key(long step, String tag) {}

    record Histogram(double min, double max, double num, double sum, double sumSquares, List<Double> bucketLimit, List<Double> bucket) {}

    /** What a reader found: the events in order, and every (step, tag)'s scalar or histogram. */
    record Read(List<JsonNode> events, Map<Key, Double> scalars, Map<Key, Histogram> histograms) {}

    private RecordedRun() {}

    /** Writes the run's records into runDir's JSONL files and its tensorboard/ directory; returns that directory. */
    static Path write(Path runDir) throws IOException {
        try (RunRecorder records = RunRecorder.all(List.of(new JsonlRecorder(runDir), new TensorBoardRecorder(runDir, CLOCK)))) {
            record(records);
        }
        return runDir.resolve("tensorboard");
    }

    static void record(RunRecorder records) {
        records.record(RecordStream.EVENTS, event("start", 0));
        Trainer.StepMetrics[] steps = {
            new Trainer.StepMetrics(1, 3, 2.5, 0.25, 1e-4, 0.1, 384, 0.75),
            new Trainer.StepMetrics(2, 3, 1.0 / 3, 1e-40, 3e-5, 1e39, 7, 3.0),
            new Trainer.StepMetrics(3, 3, Double.NaN, 0.0, 0.0, 0.1 + 0.2, 1, 1e-9),
        };
        for (Trainer.StepMetrics m : steps) {
            records.record(RecordStream.METRICS, Records.metrics(m));
            for (ObjectNode line : Records.routing(m.step(), routing(m.step()))) records.record(RecordStream.ROUTING, line);
            records.record(RecordStream.NODES, node(m.step(), "expert@127.0.0.1:40123", "expert", 0.125 * m.step(), 0.3, 0.05, 123_456_789, 16_777_217));
            records.record(RecordStream.NODES, node(m.step(), "router-0", "router", 0.5, 1.0 / 7, 0.0, 4096, 0));
        }
        ObjectNode far = Records.metrics(steps[0]);
        far.put("step", LONG_STEP);
        records.record(RecordStream.METRICS, far);
        records.record(RecordStream.EVENTS, event("finished", 3));
    }

    private static List<RoutingStats> routing(int step) {
        return switch (step) {
            case 1 -> List.of(stats(QUERY, new long[] {3, 1, 0, 4}, 1.5 * Math.log(2), 1.25, 0.1),
                    stats(VALUE, new long[] {0, 0, 7, 1, 0, 0, 0, 8}, 0.5, 1.0, 0.0));
            case 2 -> List.of(stats(QUERY, new long[] {5, 5, 5, 5}, Math.log(4), 1.0, Double.NaN),
                    stats(VALUE, new long[] {0, 0, 0, 0, 0, 0, 0, 0}, 0.0, 0.0, 0.0));
            default -> List.of(stats(QUERY, new long[] {0, 8, 0, 0}, 1e-7, 4.0, -0.5),
                    stats(VALUE, new long[] {16_777_217, 1, 2, 3, 4, 5, 6, 0}, 2.0, 1.0000001, 1e-40));
        };
    }

    private static RoutingStats stats(String module, long[] routed, double entropy, double balance, double contrastive) {
        int e = routed.length;
        double[] mass = new double[e];
        for (int i = 0; i < e; i++) mass[i] = routed[i] / 2.0;
        long slots = 0;
        for (long r : routed) slots += r;
        return new RoutingStats(module, slots / 2, routed, mass, entropy, balance, contrastive, new double[e][e], 0);
    }

    private static ObjectNode node(int step, String node, String role, double compute, double waiting, double transfer, long sent, long received) {
        ObjectNode line = JSON.createObjectNode();
        line.put("step", step);
        line.put("node", node);
        line.put("role", role);
        line.putArray("devices").addObject().put("device", 0).put("compute_s", compute).putArray("experts").add(0).add(1);
        line.put("compute_s", compute);
        line.put("wait_s", waiting);
        line.put("transfer_s", transfer);
        line.put("bytes_sent", sent);
        line.put("bytes_received", received);
        line.put("frames_sent", 3);
        line.put("frames_received", 4);
        line.putObject("frames_dropped").put("STALE", 1);
        return line;
    }

    private static ObjectNode event(String what, int step) {
        ObjectNode line = JSON.createObjectNode();
        line.put("time", START.toString());
        line.put("event", what);
        line.put("step", step);
        return line;
    }

    /** Every scalar TensorBoard must show, by (step, tag): the float32 of the value in the JSONL files, or of what docs/records.md derives from them. */
    static Map<Key, Double> expectedScalars(Path runDir) throws IOException {
        Map<Key, Double> out = new LinkedHashMap<>();
        for (JsonNode line : lines(runDir, RecordStream.METRICS)) {
            long step = line.get("step").longValue();
            put(out, step, "loss/total", number(line, "loss"));
            put(out, step, "loss/task", number(line, "task_loss"));
            put(out, step, "loss/aux", number(line, "aux_loss"));
            put(out, step, "train/lr", number(line, "lr"));
            put(out, step, "train/grad_norm", number(line, "grad_norm"));
            put(out, step, "train/tokens_per_s", number(line, "tokens_per_s"));
        }
        for (JsonNode line : lines(runDir, RecordStream.ROUTING)) {
            long step = line.get("step").longValue();
            String prefix = "routing/" + line.get("module").textValue() + "/";
            put(out, step, prefix + "gate_entropy", number(line, "gate_entropy"));
            put(out, step, prefix + "balance_loss", number(line, "balance_loss"));
            put(out, step, prefix + "contrastive_loss", number(line, "contrastive_loss"));
            double[] routed = routed(line);
            for (int e = 0; e < routed.length; e++) put(out, step, prefix + "expert_" + e + "_tokens", routed[e]);
            double total = 0, max = 0;
            for (double r : routed) {
                total += r;
                max = Math.max(max, r);
            }
            if (total == 0) continue; // no tokens: no spread to speak of
            double mean = total / routed.length, variance = 0, entropy = 0;
            for (double r : routed) {
                variance += (r - mean) * (r - mean) / routed.length;
                if (r > 0) entropy -= r / total * Math.log(r / total);
            }
            put(out, step, prefix + "imbalance_max_mean", max / mean);
            put(out, step, prefix + "load_cv", Math.sqrt(variance) / mean);
            put(out, step, prefix + "effective_experts", Math.exp(entropy));
        }
        for (JsonNode line : lines(runDir, RecordStream.NODES)) {
            long step = line.get("step").longValue();
            String prefix = "nodes/" + line.get("node").textValue() + "/";
            for (String field : new String[] {"compute_s", "wait_s", "transfer_s", "bytes_sent", "bytes_received"}) {
                put(out, step, prefix + field, number(line, field));
            }
        }
        return out;
    }

    /**
     * Every expert-load histogram by (step, tag): bucket e is expert e's routed tokens, limits e + 0.5,
     * min and max the outer edges of the first and last expert with tokens, the expert index the value.
     */
    static Map<Key, Histogram> expectedHistograms(Path runDir) throws IOException {
        Map<Key, Histogram> out = new LinkedHashMap<>();
        for (JsonNode line : lines(runDir, RecordStream.ROUTING)) {
            double[] routed = routed(line);
            List<Double> limits = new ArrayList<>(), buckets = new ArrayList<>();
            double num = 0, sum = 0, squares = 0, min = -0.5, max = routed.length - 0.5; // no tokens: every expert's bar
            boolean any = false;
            for (int e = 0; e < routed.length; e++) {
                limits.add(e + 0.5);
                buckets.add(routed[e]);
                num += routed[e];
                sum += e * routed[e];
                squares += (double) e * e * routed[e];
                if (routed[e] > 0) {
                    if (!any) min = e - 0.5;
                    max = e + 0.5;
                    any = true;
                }
            }
            Key key = new Key(line.get("step").longValue(), "routing/" + line.get("module").textValue() + "/expert_load");
            assertNull(out.put(key, new Histogram(min, max, num, sum, squares, limits, buckets)), "one histogram per " + key);
        }
        return out;
    }

    /** What read_tfevents.py printed: the events in order, their values by (step, tag). */
    static Read parseIndependentReader(String stdout) throws IOException {
        List<JsonNode> events = new ArrayList<>();
        Map<Key, Double> scalars = new LinkedHashMap<>();
        Map<Key, Histogram> histograms = new LinkedHashMap<>();
        for (JsonNode event : JSON.readTree(stdout).get("events")) {
            events.add(event);
            long step = event.get("step").longValue();
            for (JsonNode v : event.get("values")) {
                Key key = new Key(step, v.get("tag").textValue());
                if (v.has("simple_value")) {
                    assertNull(scalars.put(key, v.get("simple_value").doubleValue()), "one scalar per " + key);
                } else {
                    assertTrue(v.has("histo"), () -> key + " has neither simple_value nor histo: " + v);
                    assertNull(histograms.put(key, histogram(v.get("histo"))), "one histogram per " + key);
                }
            }
        }
        return new Read(events, scalars, histograms);
    }

    static Histogram histogram(JsonNode h) {
        return new Histogram(h.get("min").doubleValue(), h.get("max").doubleValue(), h.get("num").doubleValue(), h.get("sum").doubleValue(),
                h.get("sum_squares").doubleValue(), doubles(h.get("bucket_limit")), doubles(h.get("bucket")));
    }

    static List<Double> doubles(JsonNode array) {
        List<Double> out = new ArrayList<>();
        for (JsonNode d : array) out.add(d.doubleValue());
        return out;
    }

    private static List<JsonNode> lines(Path runDir, RecordStream stream) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(runDir.resolve(stream.file()))) out.add(JSON.readTree(line));
        return out;
    }

    /** A number of a JSONL line; Jackson writes the non-finite doubles as the strings NaN, Infinity, -Infinity. */
    private static double number(JsonNode line, String field) {
        JsonNode n = line.get(field);
        return n.isNumber() ? n.doubleValue() : Double.parseDouble(n.textValue());
    }

    private static double[] routed(JsonNode line) {
        JsonNode array = line.get("routed_tokens");
        double[] out = new double[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).longValue();
        return out;
    }

    private static void put(Map<Key, Double> out, long step, String tag, double value) {
        Key key = new Key(step, tag);
        assertNull(out.put(key, (double) (float) value), "one value per " + key);
    }
}
