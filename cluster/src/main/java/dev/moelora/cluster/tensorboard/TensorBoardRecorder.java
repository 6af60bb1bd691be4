package dev.moelora.cluster.tensorboard;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.RunRecorder;
import dev.moelora.proto.tensorboard.HistogramProto;
import dev.moelora.proto.tensorboard.Summary;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a run's record lines (docs/records.md) into TensorBoard scalars and histograms in
 * {@code <run dir>/tensorboard/}, one Event per line, flushed at once so a live TensorBoard follows
 * the run. The tags:
 * <pre>
 *   metrics  loss/total loss/task loss/aux train/lr train/grad_norm train/tokens_per_s
 *   routing  routing/&lt;module&gt;/{imbalance_max_mean, load_cv, gate_entropy, balance_loss,
 *            contrastive_loss, effective_experts, expert_&lt;e&gt;_tokens} and the histogram
 *            routing/&lt;module&gt;/expert_load
 *   nodes    nodes/&lt;node&gt;/{compute_s, wait_s, transfer_s, bytes_sent, bytes_received}
 * </pre>
 * Scalars are float32, as TensorBoard stores them (counts above 2^24 round; the histogram's buckets
 * are exact). A double that JSON has no number for may come as the string NaN, Infinity or
 * -Infinity, as the JSONL files hold it. Events lines, unknown streams and unknown fields are
 * skipped; a field absent from a line gives no value for that step. It never fails a run over what
 * it does not know, and never changes or keeps the lines it is given; a line without its
 * {@code step} (or a known field of the wrong type) is a bug of whoever built it and throws
 * IllegalArgumentException before anything of that line is written. Safe to call from several
 * threads.
 */
public final class TensorBoardRecorder implements RunRecorder {
    private static final String[][] METRICS = {
        {"loss", "loss/total"},
        {"task_loss", "loss/task"},
        {"aux_loss", "loss/aux"},
        {"lr", "train/lr"},
        {"grad_norm", "train/grad_norm"},
        {"tokens_per_s", "train/tokens_per_s"},
    };
    private static final String[] ROUTING_AS_IS = {"gate_entropy", "balance_loss", "contrastive_loss"};
    private static final String[] NODES = {"compute_s", "wait_s", "transfer_s", "bytes_sent", "bytes_received"};
    /** The streams TensorBoard shows; events.jsonl is text for people, and a stream added later is skipped until it is added here. */
    private static final Map<RecordStream, LineValues> SHOWN = new EnumMap<>(Map.<RecordStream, LineValues>of(
            RecordStream.METRICS, TensorBoardRecorder::metrics,
            RecordStream.ROUTING, TensorBoardRecorder::routing,
            RecordStream.NODES, TensorBoardRecorder::nodes));

    /** The values one line of a stream shows, or an IllegalArgumentException naming what is wrong with it. */
    private interface LineValues {
        List<Summary.Value> of(ObjectNode line);
    }

    private final EventFileWriter events;
    private boolean closed;

    /** Opens a new event file in {@code <runDir>/tensorboard/}; a resumed run gets a new one beside the old. */
    public TensorBoardRecorder(Path runDir) throws IOException {
        this(runDir, Clock.systemUTC());
    }

    TensorBoardRecorder(Path runDir, Clock clock) throws IOException {
        this.events = EventFileWriter.open(runDir.resolve("tensorboard"), clock);
    }

    /** The event file this recorder writes. */
    public Path file() {
        return events.file();
    }

    @Override
    public synchronized void record(RecordStream stream, ObjectNode line) {
        LineValues shown = SHOWN.get(stream);
        if (shown == null) return;
        if (closed) throw new IllegalStateException("TensorBoard recorder of " + events.file() + " is closed");
        long step = step(stream, line);
        List<Summary.Value> values = shown.of(line);
        if (values.isEmpty()) return;
        try {
            events.write(step, values);
            events.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(events.file() + ": " + e.getMessage(), e);
        }
    }

    /** A session start at {@code step}: TensorBoard forgets what this run wrote for later steps. */
    @Override
    public synchronized void rewind(int step) throws IOException {
        if (closed) throw new IllegalStateException("TensorBoard recorder of " + events.file() + " is closed");
        events.restart(step, "continued from the checkpoint of step " + step);
        events.flush();
    }

    @Override
    public synchronized void close() throws IOException {
        if (closed) return;
        closed = true;
        events.close();
    }

    private static List<Summary.Value> metrics(ObjectNode line) {
        List<Summary.Value> values = new ArrayList<>();
        for (String[] fieldTag : METRICS) addIfPresent(values, RecordStream.METRICS, line, fieldTag[0], fieldTag[1]);
        return values;
    }

    private static List<Summary.Value> routing(ObjectNode line) {
        String prefix = "routing/" + text(RecordStream.ROUTING, line, "module") + "/";
        List<Summary.Value> values = new ArrayList<>();
        for (String field : ROUTING_AS_IS) addIfPresent(values, RecordStream.ROUTING, line, field, prefix + field);
        long[] routed = counts(RecordStream.ROUTING, line, "routed_tokens");
        addIfPresent(values, RecordStream.ROUTING, line, "effective_experts", prefix + "effective_experts");
        if (routed == null || routed.length == 0) return values;
        ExpertLoad load = new ExpertLoad(routed);
        if (load.total > 0) {
            values.add(EventFileWriter.scalar(prefix + "imbalance_max_mean", load.maxOverMean()));
            values.add(EventFileWriter.scalar(prefix + "load_cv", load.coefficientOfVariation()));
            if (!line.has("effective_experts")) values.add(EventFileWriter.scalar(prefix + "effective_experts", load.effectiveExperts()));
        }
        values.add(EventFileWriter.histogram(prefix + "expert_load", load.histogram()));
        for (int e = 0; e < routed.length; e++) values.add(EventFileWriter.scalar(prefix + "expert_" + e + "_tokens", routed[e]));
        return values;
    }

    private static List<Summary.Value> nodes(ObjectNode line) {
        String prefix = "nodes/" + text(RecordStream.NODES, line, "node") + "/";
        List<Summary.Value> values = new ArrayList<>();
        for (String field : NODES) addIfPresent(values, RecordStream.NODES, line, field, prefix + field);
        return values;
    }

    /** The routed tokens of one module's line, E experts, and what readers derive from them (docs/records.md). */
    private static final class ExpertLoad {
        final long[] routed; // (E)
        final long total;

        ExpertLoad(long[] routed) {
            this.routed = routed;
            long sum = 0;
            for (long r : routed) sum += r;
            this.total = sum;
        }

        double mean() {
            return (double) total / routed.length;
        }

        double maxOverMean() {
            long max = 0;
            for (long r : routed) max = Math.max(max, r);
            return max / mean();
        }

        /** Population standard deviation over mean. */
        double coefficientOfVariation() {
            double mean = mean(), squares = 0;
            for (long r : routed) squares += (r - mean) * (r - mean);
            return Math.sqrt(squares / routed.length) / mean;
        }

        /** exp of the entropy (nats) of the shares routed / total: E for a uniform spread. */
        double effectiveExperts() {
            double entropy = 0;
            for (long r : routed) {
                if (r == 0) continue; // 0 log 0 = 0
                double share = (double) r / total;
                entropy -= share * Math.log(share);
            }
            return Math.exp(entropy);
        }

        /**
         * Expert index as the value, its routed tokens as the count: bucket e is (e - 0.5, e + 0.5]
         * and holds expert e's tokens. How TensorBoard draws it: both its loaders turn the buckets into
         * bars (left, right, count) with min as the left edge of the first bar and max as the right
         * edge of the last; the Python one (--load_fast=false) first drops the empty buckets at both
         * ends, the Rust data server (the default where installed) keeps them. So min and max are the
         * outer edges of the first and last expert that has tokens (not observed values): under both,
         * every expert with tokens is a bar from e - 0.5 to e + 0.5, and the empty experts at the ends
         * are dropped or become zero-count (possibly zero-width) bars that add nothing. With no tokens
         * at all min and max span every expert. The histogram view then re-bins the steps into 30
         * equal bins over their common range, spreading each bar's count over the bins it overlaps:
         * the x axis is the expert index, each expert a plateau of width 1 whose height is
         * proportional to its tokens (a bin across a boundary mixes two neighbours when the range's
         * width, in experts, does not divide 30). The exact counts are the expert_<e>_tokens scalars.
         */
        HistogramProto histogram() {
            HistogramProto.Builder h = HistogramProto.newBuilder().setNum(total);
            int first = -1, last = -1;
            double sum = 0, squares = 0;
            for (int e = 0; e < routed.length; e++) {
                h.addBucketLimit(e + 0.5).addBucket(routed[e]);
                if (routed[e] == 0) continue;
                if (first < 0) first = e;
                last = e;
                sum += (double) e * routed[e];
                squares += (double) e * e * routed[e];
            }
            if (first < 0) {
                first = 0;
                last = routed.length - 1;
            }
            h.setMin(first - 0.5).setMax(last + 0.5);
            return h.setSum(sum).setSumSquares(squares).build();
        }
    }

    private static long step(RecordStream stream, ObjectNode line) {
        JsonNode step = line.get("step");
        if (step == null || !step.isIntegralNumber() || !step.canConvertToLong()) {
            throw malformed(stream, "step", step == null ? "is missing" : "is not an integer: " + step);
        }
        return step.longValue();
    }

    private static String text(RecordStream stream, ObjectNode line, String field) {
        JsonNode node = line.get(field);
        if (node == null || !node.isTextual()) throw malformed(stream, field, node == null ? "is missing" : "is not a string: " + node);
        return node.textValue();
    }

    private static void addIfPresent(List<Summary.Value> values, RecordStream stream, ObjectNode line, String field, String tag) {
        JsonNode node = line.get(field);
        if (node == null) return;
        values.add(EventFileWriter.scalar(tag, number(stream, field, node)));
    }

    /** A JSON number, or one of the strings Jackson writes for the doubles JSON has no number for (a diverged loss). */
    private static double number(RecordStream stream, String field, JsonNode node) {
        if (node.isNumber()) return node.doubleValue();
        return switch (node.isTextual() ? node.textValue() : "") {
            case "NaN" -> Double.NaN;
            case "Infinity" -> Double.POSITIVE_INFINITY;
            case "-Infinity" -> Double.NEGATIVE_INFINITY;
            default -> throw malformed(stream, field, "is not a number: " + node);
        };
    }

    /** A field of non-negative integer counts, or null when the line has none. */
    private static long[] counts(RecordStream stream, ObjectNode line, String field) {
        JsonNode node = line.get(field);
        if (node == null) return null;
        if (!node.isArray()) throw malformed(stream, field, "is not an array: " + node);
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode n = node.get(i);
            if (!n.isIntegralNumber() || !n.canConvertToLong() || n.longValue() < 0) {
                throw malformed(stream, field, "element " + i + " is not a non-negative integer: " + n);
            }
            out[i] = n.longValue();
        }
        return out;
    }

    private static IllegalArgumentException malformed(RecordStream stream, String field, String problem) {
        return new IllegalArgumentException(stream + " line (" + stream.file() + "): field '" + field + "' " + problem);
    }
}
