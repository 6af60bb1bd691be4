package dev.moelora.cluster.dashboard;

import dev.moelora.cluster.dashboard.RunRecords.Routing;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a person watching the routers should not miss, derived from a run's records: an expert
 * that got no token for N consecutive routing records of its module (dead), a module whose
 * routing collapsed (effective experts below a multiple of top-k, or experts' mean outputs nearly
 * parallel), a node that is not up. Read-only; call while holding the run's monitor.
 */
final class Alarms {
    /** deadSteps: N; collapseFactor: effective experts below this times top-k; cosine: mean output cosine above this. */
    record Settings(int deadSteps, double collapseFactor, double cosine) {
        static final Settings DEFAULT = new Settings(20, 1.5, 0.95);
    }

    /** kind: dead-expert, collapse or node-(health); expert -1 and node "" where they do not apply. */
    record Alarm(String kind, String module, int expert, String node, String message) {}

    /** top-k assumed when a routing line has no token count and config.conf names none. */
    static final double DEFAULT_TOP_K = 2;

    private Alarms() {}

    static List<Alarm> of(RunRecords run, Settings settings) {
        List<Alarm> out = new ArrayList<>();
        Map<String, List<Routing>> byModule = newestFirst(run);
        for (Map.Entry<String, List<Routing>> e : byModule.entrySet()) dead(e.getKey(), e.getValue(), settings.deadSteps(), out);
        for (Map.Entry<String, List<Routing>> e : byModule.entrySet()) collapse(run, e.getValue().get(0), settings, out);
        if (run.placement() != null) {
            for (RunRecords.PlacedNode n : run.placement()) {
                if (n.health().equals("up")) continue;
                out.add(new Alarm("node-" + n.health(), "", -1, n.node(), n.node() + " is " + n.health()));
            }
        }
        return out;
    }

    /** The routing lines of each module, newest step first. */
    private static Map<String, List<Routing>> newestFirst(RunRecords run) {
        Map<String, List<Routing>> out = new LinkedHashMap<>();
        for (Map<String, Routing> atStep : run.routing().descendingMap().values()) {
            for (Routing r : atStep.values()) out.computeIfAbsent(r.module(), m -> new ArrayList<>()).add(r);
        }
        return out;
    }

    private static void dead(String module, List<Routing> newestFirst, int n, List<Alarm> out) {
        int experts = newestFirst.get(0).routed().length;
        for (int e = 0; e < experts; e++) {
            int zeros = 0;
            for (Routing r : newestFirst) {
                if (e >= r.routed().length || r.routed()[e] != 0) break;
                zeros++;
            }
            if (zeros >= n && n > 0) {
                int since = newestFirst.get(zeros - 1).step();
                out.add(new Alarm("dead-expert", module, e, "", String.format(Locale.ROOT,
                        "expert %d of %s got no token for %d steps (since step %d)", e, module, zeros, since)));
            }
        }
    }

    private static void collapse(RunRecords run, Routing newest, Settings s, List<Alarm> out) {
        double topK = topK(run, newest);
        double threshold = s.collapseFactor() * topK;
        List<String> why = new ArrayList<>();
        if (newest.effectiveExperts() < threshold) {
            why.add(String.format(Locale.ROOT, "effective experts %.2f < %.2f (%.2g × top-k %.2g)", newest.effectiveExperts(), threshold, s.collapseFactor(), topK));
        }
        if (newest.meanCosine() > s.cosine()) {
            why.add(String.format(Locale.ROOT, "mean output cosine between experts %.3f > %.2f", newest.meanCosine(), s.cosine()));
        }
        if (!why.isEmpty()) {
            out.add(new Alarm("collapse", newest.module(), -1, "", "routing of " + newest.module() + " collapsed at step " + newest.step() + ": " + String.join("; ", why)));
        }
    }

    /** Experts per token of a routing line: Σ routed / tokens, else config.conf's adapter.top-k, else 2. */
    static double topK(RunRecords run, Routing line) {
        return line.topK(Double.isNaN(run.configuredTopK()) ? DEFAULT_TOP_K : run.configuredTopK());
    }
}
