package dev.moelora.cluster.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.job.Progress;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.cluster.observe.RunRecorder;
import dev.moelora.model.moelora.RoutingStats;
import dev.moelora.model.train.Trainer;
import dev.moelora.proto.control.ExpertPlacement;
import dev.moelora.proto.control.ModuleRouting;
import dev.moelora.proto.control.NodeStats;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What an expert-parallel run reports, turned into what its users see: the progress line, the
 * placement and every event printed, the records (metrics, routing, nodes, events) handed to the
 * run's recorders, and {@code placement.json} (nodes, their health and the experts they host)
 * rewritten whenever it changes. It keeps every step's loss for the job's result. It never
 * decides anything about the run.
 */
final class RunReporter implements ExpertParallelRun.Listener {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path runDir;
    private final RunRecorder records;
    private final PrintStream out;
    private final boolean terminal;
    private Progress progress;
    private final List<Trainer.StepMetrics> steps = new ArrayList<>();
    private List<ExpertPlacement> placement = List.of();
    private final Map<String, String> roles = new LinkedHashMap<>();    // node -> router | expert
    private final Map<String, String> health = new LinkedHashMap<>();   // node -> up | unreachable | recovering

    RunReporter(Path runDir, RunRecorder records, PrintStream out, boolean terminal) {
        this.runDir = runDir;
        this.records = records;
        this.out = out;
        this.terminal = terminal;
    }

    /** Every step's metrics, in order; a rewind drops the steps it voids. */
    synchronized List<Trainer.StepMetrics> steps() {
        return List.copyOf(steps);
    }

    @Override
    public synchronized void onPlacement(List<ExpertPlacement> placement, List<ExpertParallelRun.Node> nodes) {
        this.placement = List.copyOf(placement);
        for (String line : Placement.describe(placement)) out.println("  placement  : " + line);
        health.replaceAll((node, h) -> h.equals("unreachable") ? h : "recovering");
        for (ExpertParallelRun.Node n : nodes) {
            roles.put(n.name(), n instanceof ExpertParallelRun.RouterNode ? "router" : "expert");
            health.put(n.name(), "up");
        }
        ObjectNode event = Records.event("placement", steps.size());
        ArrayNode list = event.putArray("placement");
        for (ExpertPlacement p : placement) list.addObject().put("expert", p.getExpert()).put("node", p.getNode()).put("device", p.getDevice());
        records.record(RecordStream.EVENTS, event);
        writePlacement();
        if (progress == null) progress = new Progress(out, terminal, steps.size());
    }

    @Override
    public synchronized void onStep(Trainer.StepMetrics m, List<ModuleRouting> routing, Map<String, NodeStats> nodes) {
        steps.add(m);
        records.record(RecordStream.METRICS, Records.metrics(m));
        List<RoutingStats> stats = routing.stream().map(Records::routingStats).toList();
        for (ObjectNode line : Records.routing(m.step(), stats)) records.record(RecordStream.ROUTING, line);
        nodes.forEach((node, s) -> records.record(RecordStream.NODES, Records.node(m.step(), node, s)));
        progress.onStep(m);
    }

    @Override
    public synchronized void onEvent(String event, int step, String node, String reason, String checkpoint, double seconds) {
        ObjectNode e = Records.event(event, step);
        if (!node.isEmpty()) e.put("node", node);
        if (!reason.isEmpty()) e.put("reason", reason);
        if (!checkpoint.isEmpty()) e.put("checkpoint", checkpoint);
        if (seconds > 0) e.put("seconds", seconds);
        records.record(RecordStream.EVENTS, e);
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "  %-10s : step %d", event, step));
        if (!node.isEmpty()) line.append(", ").append(node);
        if (!checkpoint.isEmpty()) line.append(", ").append(checkpoint);
        if (seconds > 0) line.append(String.format(Locale.ROOT, " (%.1f s)", seconds));
        if (!reason.isEmpty()) line.append(": ").append(reason);
        if (terminal) out.println();
        out.println(line);
        boolean changed = true;
        switch (event) {
            case "node-lost", "node-unreachable" -> health.put(node, "unreachable");
            case "recovering" -> {
                for (String n : node.split(", ")) if (health.containsKey(n)) health.put(n, "unreachable");
                health.replaceAll((n, h) -> h.equals("up") ? "recovering" : h);
            }
            case "node-up" -> {
                health.put(node, "up");
                roles.putIfAbsent(node, "spare");
            }
            default -> changed = false;
        }
        if (changed) writePlacement();
    }

    @Override
    public synchronized void onRewind(int step) {
        steps.removeIf(m -> m.step() > step);
        try {
            records.rewind(step);
        } catch (IOException e) {
            throw new UncheckedIOException(runDir + ": rewinding the records to step " + step + ": " + e.getMessage(), e);
        }
        progress = new Progress(out, terminal, step);
    }

    /** placement.json (docs/records.md): every node with its role, health and hosted experts; written under a temporary name, then moved. */
    private void writePlacement() {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode list = root.putArray("nodes");
        for (Map.Entry<String, String> e : health.entrySet()) {
            ObjectNode n = list.addObject();
            n.put("node", e.getKey());
            n.put("role", roles.getOrDefault(e.getKey(), "expert"));
            n.put("health", e.getValue());
            ArrayNode experts = n.putArray("experts");
            java.util.TreeSet<Integer> devices = new java.util.TreeSet<>();
            for (ExpertPlacement p : placement) {
                if (!p.getNode().equals(e.getKey())) continue;
                experts.addObject().put("expert", p.getExpert()).put("device", p.getDevice());
                devices.add(p.getDevice());
            }
            ArrayNode d = n.putArray("devices");
            devices.forEach(d::add);
        }
        Path file = runDir.resolve("placement.json"), tmp = runDir.resolve("placement.json.tmp");
        try {
            Files.writeString(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }
}
