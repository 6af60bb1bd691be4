package dev.moelora.cluster.dashboard;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A MoELoRA expert-parallel run directory written by hand as docs/records.md describes it:
 * 2 module kinds (query, value) x 2 layers x 4 experts, top-2 over 128 tokens per module, expert 3
 * of layer 1's query getting no token from step 6 on, two expert nodes and a router, a placement
 * of experts 0, 1 on the first node and 2, 3 on the second. Layer 0's routing lines carry layer and
 * kind; layer 1's do not (as older files), so readers must derive them from the module name.
 */
final class DashboardFixture {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> MODULES = List.of("encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.value",
            "encoder.layer.1.attention.self.query", "encoder.layer.1.attention.self.value");
    static final int EXPERTS = 4, TOP_K = 2, TOKENS = 128, PLANNED_STEPS = 60;
    static final String DEAD_MODULE = "encoder.layer.1.attention.self.query";
    static final int DEAD_EXPERT = 3, DEAD_FROM = 6;
    static final String NODE_A = "expert@127.0.0.1:40123", NODE_B = "expert@127.0.0.1:40124", ROUTER = "router-0";

    private DashboardFixture() {}

    /** A run directory with steps 1..steps, its config.conf, events and placement (all nodes up). */
    static Path run(Path dir, int steps) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.conf"), "adapter { type = moelora, experts = 4, top-k = 2 }\ntrain { steps = " + PLANNED_STEPS + " }\n");
            event(dir, "start", 0, null);
            event(dir, "placement", 0, null);
            placement(dir, null);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        append(dir, 1, steps);
        return dir;
    }

    /** Appends steps from..to (inclusive) to metrics.jsonl, routing.jsonl and nodes.jsonl, one write per file per step. */
    static void append(Path dir, int from, int to) {
        for (int s = from; s <= to; s++) {
            StringBuilder routing = new StringBuilder(), nodes = new StringBuilder();
            for (int m = 0; m < MODULES.size(); m++) routing.append(routingLine(s, m)).append('\n');
            for (String node : List.of(NODE_A, NODE_B, ROUTER)) nodes.append(nodeLine(s, node)).append('\n');
            write(dir.resolve("metrics.jsonl"), metricsLine(s) + "\n");
            write(dir.resolve("routing.jsonl"), routing.toString());
            write(dir.resolve("nodes.jsonl"), nodes.toString());
        }
    }

    static void write(Path file, String text) {
        try {
            Files.writeString(file, text, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Tokens per expert of module m at a step: a wave over the experts, top-2 of 128 tokens (sums to 256). */
    static long[] routed(int step, int m) {
        double[] w = new double[EXPERTS];
        for (int e = 0; e < EXPERTS; e++) w[e] = 1 + 0.45 * Math.sin(0.3 * step + 1.7 * e + m);
        if (MODULES.get(m).equals(DEAD_MODULE) && step >= DEAD_FROM) w[DEAD_EXPERT] = 0;
        double sum = 0;
        for (double v : w) sum += v;
        long[] out = new long[EXPERTS];
        long given = 0;
        for (int e = 0; e < EXPERTS; e++) {
            out[e] = (long) Math.floor(w[e] / sum * TOP_K * TOKENS);
            given += out[e];
        }
        for (int e = 0; given < TOP_K * TOKENS; e = (e + 1) % EXPERTS) {
            if (w[e] == 0) continue;
            out[e]++;
            given++;
        }
        return out;
    }

    private static String routingLine(int step, int m) {
        String module = MODULES.get(m);
        ObjectNode l = JSON.createObjectNode();
        l.put("step", step);
        l.put("module", module);
        if (module.contains(".layer.0.")) {
            l.put("layer", 0);
            l.put("kind", module.substring("encoder.layer.0.".length()));
        }
        l.put("tokens", TOKENS);
        long[] routed = routed(step, m);
        ArrayNode r = l.putArray("routed_tokens"), mass = l.putArray("gate_mass"), p = l.putArray("mean_gate_prob");
        double h = 0;
        for (long v : routed) {
            r.add(v);
            mass.add(v / 2.0);
            p.add(v / 2.0 / TOKENS);
            double share = v / (double) (TOP_K * TOKENS);
            if (share > 0) h -= share * Math.log(share);
        }
        l.put("gate_entropy", h * 0.9);
        l.put("effective_experts", Math.exp(h));
        l.put("dropped_tokens", 0);
        l.put("balance_loss", 1.0 + 0.02 * Math.cos(step + m));
        l.put("contrastive_loss", 2.0 - 0.01 * step);
        ArrayNode cos = l.putArray("mean_output_cosine");
        for (int i = 0; i < EXPERTS; i++) {
            ArrayNode row = cos.addArray();
            for (int j = 0; j < EXPERTS; j++) row.add(i == j ? 1.0 : 0.1 + 0.01 * (i + j));
        }
        return l.toString();
    }

    private static String metricsLine(int step) {
        ObjectNode l = JSON.createObjectNode();
        double task = 1.2 * Math.exp(-step / 25.0) + 0.3, aux = 0.01 + 0.1 * (2.0 - 0.01 * step);
        l.put("step", step);
        l.put("steps", PLANNED_STEPS);
        l.put("loss", task + aux);
        l.put("task_loss", task);
        l.put("aux_loss", aux);
        l.put("lr", 2e-3 * Math.min(1.0, step / 10.0));
        l.put("grad_norm", 0.8 + 0.3 * Math.sin(step));
        l.put("tokens", 512);
        l.put("seconds", 0.5 + 0.01 * (step % 5));
        l.put("tokens_per_s", 512 / (0.5 + 0.01 * (step % 5)));
        return l.toString();
    }

    private static String nodeLine(int step, String node) {
        ObjectNode l = JSON.createObjectNode();
        l.put("step", step);
        l.put("node", node);
        boolean router = node.equals(ROUTER);
        l.put("role", router ? "router" : "expert");
        ArrayNode devices = l.putArray("devices");
        if (!router) {
            int first = node.equals(NODE_A) ? 0 : 2;
            for (int d = 0; d < 2; d++) {
                ObjectNode dev = devices.addObject();
                dev.put("device", d);
                dev.putArray("experts").add(first + d);
                dev.put("compute_s", 0.1);
            }
        }
        l.put("compute_s", router ? 0.3 : 0.2);
        l.put("wait_s", router ? 0.1 : 0.25 + 0.01 * (step % 3));
        l.put("transfer_s", 0.04);
        l.put("bytes_sent", 1_000_000L + step);
        l.put("bytes_received", 900_000L + step);
        l.put("frames_sent", 40);
        l.put("frames_received", 38);
        ObjectNode dropped = l.putObject("frames_dropped");
        if (node.equals(NODE_B) && step % 10 == 0) dropped.put("STALE", 1);
        return l.toString();
    }

    static void event(Path dir, String event, int step, String node) {
        ObjectNode l = JSON.createObjectNode();
        l.put("time", Instant.parse("2025-01-01T00:00:00Z").plusSeconds(step).toString());
        l.put("event", event);
        l.put("step", step);
        if (node != null) l.put("node", node);
        if (event.equals("placement")) {
            ArrayNode p = l.putArray("placement");
            for (int e = 0; e < EXPERTS; e++) p.addObject().put("expert", e).put("node", e < 2 ? NODE_A : NODE_B).put("device", e % 2);
        }
        write(dir.resolve("events.jsonl"), l.toString() + "\n");
    }

    /** Rewrites placement.json atomically; the node named unreachable (if any) gets that health. */
    static void placement(Path dir, String unreachable) {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode nodes = root.putArray("nodes");
        for (String node : List.of(NODE_A, NODE_B)) {
            ObjectNode n = nodes.addObject();
            n.put("node", node);
            n.put("role", "expert");
            n.put("health", node.equals(unreachable) ? "unreachable" : "up");
            n.put("devices", 2);
            ArrayNode experts = n.putArray("experts");
            int first = node.equals(NODE_A) ? 0 : 2;
            for (int d = 0; d < 2; d++) experts.addObject().put("expert", first + d).put("device", d);
        }
        try {
            Path tmp = dir.resolve("placement.json.tmp");
            Files.writeString(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
            Files.move(tmp, dir.resolve("placement.json"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** routing.jsonl read independently of the dashboard: module -> routed tokens at a step (the newest line wins). */
    static Map<String, long[]> routingAt(Path dir, int step) {
        Map<String, long[]> out = new LinkedHashMap<>();
        try {
            for (String line : Files.readAllLines(dir.resolve("routing.jsonl"))) {
                if (line.isBlank()) continue;
                JsonNode l = JSON.readTree(line);
                if (l.path("step").asInt() != step) continue;
                long[] routed = new long[l.get("routed_tokens").size()];
                for (int e = 0; e < routed.length; e++) routed[e] = l.get("routed_tokens").get(e).asLong();
                out.put(l.get("module").asText(), routed);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }
}
