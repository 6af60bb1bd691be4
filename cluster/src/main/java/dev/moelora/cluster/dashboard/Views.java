package dev.moelora.cluster.dashboard;

import static dev.moelora.cluster.dashboard.Charts.esc;
import static dev.moelora.cluster.dashboard.Charts.num;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moelora.cluster.dashboard.Charts.Reference;
import dev.moelora.cluster.dashboard.Charts.Series;
import dev.moelora.cluster.dashboard.RunRecords.NodeStep;
import dev.moelora.cluster.dashboard.RunRecords.Routing;
import dev.moelora.cluster.dashboard.RunRecords.Step;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * The dashboard's panels as HTML fragments with inline SVG, rendered from the records: the live
 * page fetches them again on every change and swaps them in; the report puts the final ones into
 * one file. One renderer for both, so the page and the report never disagree. Each method takes
 * the run's monitor while it reads; nothing here changes a run.
 */
final class Views {
    private static final String[] SPLIT_COLORS = {"#4e79a7", "#edc948", "#e15759"};
    private static final String[] SPLIT_NAMES = {"compute", "wait", "transfer"};
    private static final int TABLE_OPEN_UP_TO = 16, EVENTS_SHOWN = 30;

    private Views() {}

    /** The panels of one run; step = the routing step the heatmaps show. */
    record RunView(int step, List<Integer> routingSteps, int generation, String summary, String alarms, String heatmaps,
                   String routing, String training, String placement) {}

    /** Renders every panel of a run; heatmaps at {@code step} (or the routing step before it), the newest complete step when step &lt; 0. */
    static RunView run(RunRecords run, int step, Alarms.Settings settings) {
        synchronized (run) {
            List<Alarms.Alarm> alarms = Alarms.of(run, settings);
            int shown = shownStep(run, step);
            return new RunView(shown, List.copyOf(run.routing().keySet()), run.generation(), summary(run), alarms(alarms),
                    heatmaps(run, shown, alarms), routing(run, settings), training(run), placement(run));
        }
    }

    /** The heatmaps alone (the page's step slider). */
    static RunView heatmapsOnly(RunRecords run, int step, Alarms.Settings settings) {
        synchronized (run) {
            int shown = shownStep(run, step);
            return new RunView(shown, List.copyOf(run.routing().keySet()), run.generation(), "", "",
                    heatmaps(run, shown, Alarms.of(run, settings)), "", "", "");
        }
    }

    private static int shownStep(RunRecords run, int step) {
        return step < 0 ? run.newestCompleteRoutingStep() : run.routingStepAtOrBefore(step);
    }

    /** A panel as the page lays it out: a section with its title over its fragment. */
    static String panel(String id, String title, String body) {
        return "<section class=\"panel\" data-panel=\"" + esc(id) + "\">" + (title.isEmpty() ? "" : "<h2>" + esc(title) + "</h2>")
                + "<div class=\"panel-body\" data-fragment=\"" + esc(id) + "\">" + body + "</div></section>";
    }

    // ----- summary tiles

    static String summary(RunRecords run) {
        StringBuilder out = new StringBuilder("<div class=\"tiles\">");
        NavigableMap<Integer, Step> steps = run.steps();
        int last = run.lastStep(), planned = run.plannedSteps();
        String progress = planned > 0 ? String.format(Locale.ROOT, "%.1f", Math.min(100.0, 100.0 * last / planned)) : "0";
        out.append("<div class=\"tile wide\" data-tile=\"step\" data-step=\"").append(last).append("\"><span class=\"label\">step</span><span class=\"value\">")
                .append(last).append(planned > 0 ? " <small>/ " + planned + "</small>" : "").append("</span>")
                .append("<span class=\"progress\"><i style=\"width:").append(progress).append("%\"></i></span></div>");
        String status = status(run);
        tile(out, "status", "status", status, run.adapter().isEmpty() ? "" : "adapter " + run.adapter());
        double perStep = recentStepSeconds(steps);
        boolean done = status.equals("finished") || (planned > 0 && last >= planned);
        tile(out, "eta", "ETA", done ? "done" : Charts.duration(perStep * (planned - last)), Double.isNaN(perStep) ? "" : Charts.seconds(perStep) + " per step");
        Step s = steps.isEmpty() ? null : steps.lastEntry().getValue();
        tile(out, "loss", "loss", s == null ? "–" : num(s.loss()), s == null ? "" : "task " + num(s.taskLoss()) + " · aux " + num(s.auxLoss()));
        tile(out, "tokens-per-s", "tokens/s", s == null ? "–" : num(s.tokensPerSecond()), s == null || s.tokens() < 0 ? "" : s.tokens() + " tokens per step");
        tile(out, "lr", "learning rate", s == null ? "–" : num(s.lr()), "");
        tile(out, "grad-norm", "grad norm", s == null ? "–" : num(s.gradNorm()), "before clipping");
        if (run.placement() != null || !run.nodes().isEmpty()) tile(out, "recoveries", "recoveries", Integer.toString(run.recoveries()), "");
        int malformed = 0;
        for (int n : run.malformed().values()) malformed += n;
        if (malformed > 0) tile(out, "malformed", "skipped lines", Integer.toString(malformed), String.join(", ", run.malformed().keySet()));
        return out.append("</div>").toString();
    }

    private static void tile(StringBuilder out, String id, String label, String value, String sub) {
        out.append("<div class=\"tile\" data-tile=\"").append(id).append("\"><span class=\"label\">").append(esc(label))
                .append("</span><span class=\"value\">").append(esc(value)).append("</span>");
        if (!sub.isEmpty()) out.append("<span class=\"sub\">").append(esc(sub)).append("</span>");
        out.append("</div>");
    }

    /** The run's state in a word: from its last life event, else from its records. */
    static String status(RunRecords run) {
        for (int i = run.events().size() - 1; i >= 0; i--) {
            String e = run.events().get(i).event();
            switch (e) {
                case "finished", "failed", "preempted", "recovering" -> {
                    return e;
                }
                case "start", "resumed", "recovered", "placement" -> {
                    return "training";
                }
                default -> {
                    // node and checkpoint events say nothing about the run as a whole
                }
            }
        }
        if (run.scores() != null) return "finished";
        if (run.steps().isEmpty() && run.routing().isEmpty()) return "waiting";
        return run.plannedSteps() > 0 && run.lastStep() >= run.plannedSteps() ? "finished" : "training";
    }

    /** Mean wall time of the last 20 steps; NaN without steps. */
    private static double recentStepSeconds(NavigableMap<Integer, Step> steps) {
        double sum = 0;
        int n = 0;
        for (Step s : steps.descendingMap().values()) {
            if (!Double.isFinite(s.seconds())) continue;
            sum += s.seconds();
            if (++n == 20) break;
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    // ----- alarms

    static String alarms(List<Alarms.Alarm> alarms) {
        if (alarms.isEmpty()) return "<p class=\"ok\">no alarms</p>";
        StringBuilder out = new StringBuilder("<ul class=\"alarm-list\">");
        for (Alarms.Alarm a : alarms) {
            out.append("<li class=\"alarm ").append(esc(a.kind())).append("\" data-alarm=\"").append(esc(a.kind())).append('"');
            if (!a.module().isEmpty()) out.append(" data-module=\"").append(esc(a.module())).append('"');
            if (a.expert() >= 0) out.append(" data-expert=\"").append(a.expert()).append('"');
            if (!a.node().isEmpty()) out.append(" data-node=\"").append(esc(a.node())).append('"');
            out.append("><b>").append(esc(a.kind().replace('-', ' '))).append("</b> ").append(esc(a.message())).append("</li>");
        }
        return out.append("</ul>").toString();
    }

    // ----- heatmaps

    static String heatmaps(RunRecords run, int step, List<Alarms.Alarm> alarms) {
        Map<String, Routing> atStep = run.routing().get(step);
        if (atStep == null) return "<p class=\"empty\">no routing records (routing.jsonl is written by MoELoRA runs)</p>";
        Set<String> dead = new LinkedHashSet<>();
        for (Alarms.Alarm a : alarms) if (a.kind().equals("dead-expert")) dead.add(a.module() + "#" + a.expert());
        Map<String, List<Routing>> byKind = new LinkedHashMap<>();
        for (Routing r : atStep.values()) byKind.computeIfAbsent(r.kind(), k -> new ArrayList<>()).add(r);
        int experts = 0;
        StringBuilder out = new StringBuilder("<div class=\"heatmap-grid\" data-step=\"").append(step).append("\">");
        for (Map.Entry<String, List<Routing>> e : byKind.entrySet()) {
            List<Routing> rows = new ArrayList<>(e.getValue());
            rows.sort(Comparator.comparingInt(Routing::layer));
            for (Routing r : rows) experts = Math.max(experts, r.routed().length);
            out.append(heatmap(e.getKey(), step, rows, dead));
        }
        out.append("</div>");
        double uniform = experts == 0 ? 0 : 1.0 / experts;
        out.append(Charts.colorLegend("share of the module's routed tokens", new double[] {0, 0.5, 1},
                new String[] {"0", Charts.percent(uniform) + " (even)", "≥ " + Charts.percent(2 * uniform)}));
        return out.toString();
    }

    private static String heatmap(String kind, int step, List<Routing> rows, Set<String> dead) {
        int experts = 0;
        for (Routing r : rows) experts = Math.max(experts, r.routed().length);
        int cellW = Math.max(14, Math.min(64, 512 / Math.max(1, experts))), cellH = 28, left = 64, top = 22, right = 64;
        int width = left + experts * cellW + right, height = top + rows.size() * cellH + 6;
        StringBuilder out = new StringBuilder();
        out.append("<figure class=\"heatmap\" data-heatmap=\"").append(esc(kind)).append("\" data-kind=\"").append(esc(kind))
                .append("\" data-step=\"").append(step).append("\"><figcaption>").append(esc(kind))
                .append(" <span class=\"muted\">step ").append(step).append(" · ").append(experts).append(" experts</span></figcaption>");
        out.append("<svg xmlns=\"").append(Charts.SVG_NS).append("\" viewBox=\"0 0 ").append(width).append(' ').append(height)
                .append("\" style=\"max-width:").append(width * 3 / 2).append("px\" role=\"img\" aria-label=\"expert load of ").append(esc(kind)).append("\">");
        for (int e = 0; e < experts; e++) {
            out.append(String.format(Locale.ROOT, "<text class=\"col-label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">e%d</text>", left + e * cellW + cellW / 2, top - 7, e));
        }
        out.append(String.format(Locale.ROOT, "<text class=\"col-label\" x=\"%d\" y=\"%d\" text-anchor=\"start\">max/mean</text>", left + experts * cellW + 6, top - 7));
        for (int row = 0; row < rows.size(); row++) {
            Routing r = rows.get(row);
            int y = top + row * cellH;
            long total = r.total();
            out.append(String.format(Locale.ROOT, "<text class=\"row-label\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", left - 6, y + cellH / 2 + 4,
                    r.layer() >= 0 ? "layer " + r.layer() : esc(r.module())));
            for (int e = 0; e < r.routed().length; e++) {
                double share = r.share(e);
                double t = share * r.routed().length / 2;   // 0 .. 2 x even -> 0 .. 1
                boolean isDead = dead.contains(r.module() + "#" + e);
                int x = left + e * cellW;
                out.append("<rect class=\"cell").append(isDead ? " dead" : "").append("\" data-module=\"").append(esc(r.module()))
                        .append("\" data-layer=\"").append(r.layer()).append("\" data-expert=\"").append(e)
                        .append("\" data-tokens=\"").append(r.routed()[e]).append('"')
                        .append(String.format(Locale.ROOT, " x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">", x + 1, y + 1, cellW - 2, cellH - 2, Charts.viridis(t)))
                        .append("<title>").append(esc(String.format(Locale.ROOT, "%s\nexpert %d: %,d tokens (%s of %,d routed)%s",
                                r.module(), e, r.routed()[e], Charts.percent(share), total, isDead ? "\ndead: no token for many steps" : "")))
                        .append("</title></rect>");
                if (cellW >= 30) {
                    out.append(String.format(Locale.ROOT, "<text class=\"cell-text\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">%s</text>",
                            x + cellW / 2, y + cellH / 2 + 4, Charts.darkCell(t) ? "#ffffff" : "#1b1b1b", Charts.percent(share)));
                }
            }
            out.append(String.format(Locale.ROOT, "<text class=\"row-note\" x=\"%d\" y=\"%d\"><title>%s</title>%s×</text>", left + experts * cellW + 6, y + cellH / 2 + 4,
                    esc(String.format(Locale.ROOT, "max/mean %s · CV %s · effective experts %s · %s tokens", num(r.imbalance()), num(r.cv()),
                            num(r.effectiveExperts()), r.tokens() >= 0 ? Long.toString(r.tokens()) : "?")), esc(num(r.imbalance()))));
        }
        return out.append("</svg></figure>").toString();
    }

    // ----- routing over steps

    static String routing(RunRecords run, Alarms.Settings settings) {
        if (run.routing().isEmpty()) return "<p class=\"empty\">no routing records</p>";
        List<String> kinds = new ArrayList<>();
        int experts = 0;
        for (Map<String, Routing> atStep : run.routing().values()) {
            for (Routing r : atStep.values()) {
                if (!kinds.contains(r.kind())) kinds.add(r.kind());
                experts = Math.max(experts, r.routed().length);
            }
        }
        Routing any = run.routing().lastEntry().getValue().values().iterator().next();
        double threshold = settings.collapseFactor() * Alarms.topK(run, any);
        StringBuilder out = new StringBuilder("<div class=\"charts\">");
        out.append(Charts.lineChart("imbalance", "Load imbalance: max / mean routed tokens", "step", "max / mean",
                byKind(run, kinds, Routing::imbalance), List.of(new Reference(1, "even load"))));
        out.append(Charts.lineChart("cv", "Coefficient of variation of routed tokens", "step", "std / mean", byKind(run, kinds, Routing::cv), List.of()));
        out.append(Charts.lineChart("entropy", "Gate entropy", "step", "nats", byKind(run, kinds, Routing::gateEntropy),
                List.of(new Reference(Math.log(experts), "ln E (uniform gate)"))));
        out.append(Charts.lineChart("effective-experts", "Effective experts", "step", "experts", byKind(run, kinds, Routing::effectiveExperts),
                List.of(new Reference(experts, "E = " + experts), new Reference(threshold, "collapse below " + num(threshold)))));
        out.append("</div><p class=\"note\">Line: mean over layers; band: the spread across layers (min – max).</p>");
        out.append(moduleTable(run));
        return out.toString();
    }

    /** Per kind: the mean over layers of a routing value at each step, and its min – max band. */
    private static List<Series> byKind(RunRecords run, List<String> kinds, ToDoubleFunction<Routing> value) {
        List<Series> out = new ArrayList<>();
        for (int k = 0; k < kinds.size(); k++) {
            String kind = kinds.get(k);
            List<double[]> points = new ArrayList<>();
            for (Map.Entry<Integer, Map<String, Routing>> e : run.routing().entrySet()) {
                double sum = 0, min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
                int n = 0;
                for (Routing r : e.getValue().values()) {
                    if (!r.kind().equals(kind)) continue;
                    double v = value.applyAsDouble(r);
                    if (!Double.isFinite(v)) continue;
                    sum += v;
                    min = Math.min(min, v);
                    max = Math.max(max, v);
                    n++;
                }
                if (n > 0) points.add(new double[] {e.getKey(), sum / n, min, max});
            }
            double[] x = column(points, 0), y = column(points, 1), lo = column(points, 2), hi = column(points, 3);
            out.add(Series.band(kind, Charts.color(k), x, y, lo, hi));
        }
        return out;
    }

    private static double[] column(List<double[]> rows, int c) {
        double[] out = new double[rows.size()];
        for (int i = 0; i < out.length; i++) out[i] = rows.get(i)[c];
        return out;
    }

    private static String moduleTable(RunRecords run) {
        int step = run.newestCompleteRoutingStep();
        Map<String, Routing> atStep = run.routing().get(step);
        List<Routing> rows = new ArrayList<>(atStep.values());
        rows.sort(Comparator.comparingDouble((Routing r) -> Double.isNaN(r.imbalance()) ? -1 : r.imbalance()).reversed());
        StringBuilder out = new StringBuilder("<details class=\"modules\"").append(rows.size() <= TABLE_OPEN_UP_TO ? " open=\"open\"" : "")
                .append("><summary>Modules at step ").append(step).append(", most imbalanced first</summary><div class=\"table-wrap\"><table><thead><tr>")
                .append("<th>module</th><th>tokens</th><th>max/mean</th><th>CV</th><th>gate entropy</th><th>effective experts</th><th>dropped</th>")
                .append("<th>balance loss</th><th>contrastive loss</th><th>mean output cosine</th></tr></thead><tbody>");
        for (Routing r : rows) {
            out.append("<tr data-module=\"").append(esc(r.module())).append("\"><td class=\"name\">").append(esc(r.module())).append("</td><td>")
                    .append(r.tokens() >= 0 ? Long.toString(r.tokens()) : "–").append("</td><td>").append(num(r.imbalance())).append("</td><td>")
                    .append(num(r.cv())).append("</td><td>").append(num(r.gateEntropy())).append("</td><td>").append(num(r.effectiveExperts()))
                    .append("</td><td>").append(r.dropped()).append("</td><td>").append(num(r.balanceLoss())).append("</td><td>")
                    .append(num(r.contrastiveLoss())).append("</td><td>").append(num(r.meanCosine())).append("</td></tr>");
        }
        return out.append("</tbody></table></div></details>").toString();
    }

    // ----- training

    static String training(RunRecords run) {
        NavigableMap<Integer, Step> steps = run.steps();
        if (steps.isEmpty() && run.routing().isEmpty()) return "<p class=\"empty\">no metrics records yet</p>";
        double[] x = new double[steps.size()];
        int i = 0;
        for (int s : steps.keySet()) x[i++] = s;
        StringBuilder out = new StringBuilder("<div class=\"charts\">");
        out.append(Charts.lineChart("loss", "Loss", "step", "loss", List.of(
                Series.line("total (minimised)", Charts.color(0), x, metric(steps, Step::loss)),
                Series.line("task", Charts.color(1), x, metric(steps, Step::taskLoss)),
                Series.line("aux (weighted balance + contrastive)", Charts.color(2), x, metric(steps, Step::auxLoss))), List.of()));
        if (!run.routing().isEmpty()) {
            double[] rx = new double[run.routing().size()], balance = new double[rx.length], contrastive = new double[rx.length];
            int k = 0;
            for (Map.Entry<Integer, Map<String, Routing>> e : run.routing().entrySet()) {
                rx[k] = e.getKey();
                balance[k] = mean(e.getValue().values(), Routing::balanceLoss);
                contrastive[k] = mean(e.getValue().values(), Routing::contrastiveLoss);
                k++;
            }
            out.append(Charts.lineChart("router-losses", "Router losses (unweighted, mean over modules)", "step", "loss", List.of(
                    Series.line("balance", Charts.color(3), rx, balance), Series.line("contrastive", Charts.color(4), rx, contrastive)), List.of()));
        }
        out.append(Charts.lineChart("lr", "Learning rate", "step", "lr", List.of(Series.line("lr", Charts.color(6), x, metric(steps, Step::lr))), List.of()));
        out.append(Charts.lineChart("grad-norm", "Gradient norm (before clipping)", "step", "norm",
                List.of(Series.line("grad norm", Charts.color(5), x, metric(steps, Step::gradNorm))), List.of()));
        out.append(Charts.lineChart("tokens-per-s", "Throughput", "step", "tokens / s",
                List.of(Series.line("tokens/s", Charts.color(0), x, metric(steps, Step::tokensPerSecond))), List.of()));
        out.append(Charts.lineChart("step-seconds", "Step time", "step", "seconds",
                List.of(Series.line("wall time of the step", Charts.color(8), x, metric(steps, Step::seconds))), List.of()));
        return out.append("</div>").toString();
    }

    private static double[] metric(NavigableMap<Integer, Step> steps, ToDoubleFunction<Step> f) {
        double[] out = new double[steps.size()];
        int i = 0;
        for (Step s : steps.values()) out[i++] = f.applyAsDouble(s);
        return out;
    }

    private static double mean(Iterable<Routing> rows, ToDoubleFunction<Routing> f) {
        double sum = 0;
        int n = 0;
        for (Routing r : rows) {
            double v = f.applyAsDouble(r);
            if (Double.isFinite(v)) {
                sum += v;
                n++;
            }
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    // ----- placement and nodes

    static String placement(RunRecords run) {
        List<RunRecords.PlacedNode> placed = run.placement();
        NavigableMap<Integer, Map<String, NodeStep>> nodes = run.nodes();
        if (placed == null && nodes.isEmpty()) return "<p class=\"empty\">no placement or node records (an expert-parallel run writes placement.json and nodes.jsonl)</p>";
        Map<String, NodeStep> latest = new LinkedHashMap<>();
        Map<String, long[]> totals = new LinkedHashMap<>();
        for (Map<String, NodeStep> atStep : nodes.values()) {
            for (NodeStep n : atStep.values()) {
                latest.put(n.node(), n);
                long[] t = totals.computeIfAbsent(n.node(), k -> new long[4]);
                t[0] += n.bytesSent();
                t[1] += n.bytesReceived();
                t[2] += n.framesSent();
                t[3] += n.framesReceived();
            }
        }
        List<String> names = new ArrayList<>();
        if (placed != null) for (RunRecords.PlacedNode p : placed) names.add(p.node());
        for (String n : latest.keySet()) if (!names.contains(n)) names.add(n);
        double full = 0;
        for (NodeStep n : latest.values()) full = Math.max(full, sum(n.computeSeconds(), n.waitSeconds(), n.transferSeconds()));

        StringBuilder out = new StringBuilder("<div class=\"split-legend\">step-time split of the newest step: ");
        for (int i = 0; i < SPLIT_NAMES.length; i++) {
            out.append("<span class=\"key\"><i class=\"swatch\" style=\"background:").append(SPLIT_COLORS[i]).append("\"></i>").append(SPLIT_NAMES[i]).append("</span>");
        }
        out.append("</div><div class=\"nodes\">");
        for (String name : names) {
            RunRecords.PlacedNode p = null;
            if (placed != null) for (RunRecords.PlacedNode c : placed) if (c.node().equals(name)) p = c;
            NodeStep n = latest.get(name);
            out.append(nodeCard(name, p, n, totals.get(name), full));
        }
        out.append("</div>");
        if (!nodes.isEmpty()) {
            out.append("<div class=\"charts\">");
            out.append(Charts.lineChart("node-wait", "Wait per node", "step", "seconds waiting", perNode(nodes, names, NodeStep::waitSeconds), List.of()));
            out.append(Charts.lineChart("node-compute", "Compute per node", "step", "seconds computing", perNode(nodes, names, NodeStep::computeSeconds), List.of()));
            out.append(Charts.lineChart("node-traffic", "Traffic per node (sent + received)", "step", "bytes per step",
                    perNode(nodes, names, n -> n.bytesSent() + n.bytesReceived()), List.of()));
            out.append("</div>");
        }
        out.append(events(run));
        return out.toString();
    }

    private static String nodeCard(String name, RunRecords.PlacedNode p, NodeStep n, long[] total, double full) {
        String health = p == null ? "unknown" : p.health();
        String role = p != null && !p.role().isEmpty() ? p.role() : n != null ? n.role() : "";
        StringBuilder out = new StringBuilder("<article class=\"node health-").append(esc(health)).append("\" data-node=\"").append(esc(name))
                .append("\" data-health=\"").append(esc(health)).append("\"><header><span class=\"health-badge\">").append(esc(health))
                .append("</span><h3>").append(esc(name)).append("</h3><span class=\"role\">").append(esc(role)).append("</span></header>");
        Map<Integer, List<Integer>> devices = new java.util.TreeMap<>();
        if (p != null) {
            for (int d = 0; d < p.devices(); d++) devices.put(d, new ArrayList<>());
            for (int[] e : p.experts()) devices.computeIfAbsent(e[1], k -> new ArrayList<>()).add(e[0]);
        } else if (n != null) {
            for (RunRecords.Device d : n.devices()) devices.put(d.device(), new ArrayList<>(d.experts()));
        }
        if (!devices.isEmpty()) {
            out.append("<div class=\"devices\">");
            for (Map.Entry<Integer, List<Integer>> d : devices.entrySet()) {
                out.append("<div class=\"device\" data-device=\"").append(d.getKey()).append("\"><span class=\"device-name\">device ").append(d.getKey()).append("</span>");
                List<Integer> experts = new ArrayList<>(d.getValue());
                experts.sort(null);
                for (int e : experts) out.append("<span class=\"expert-chip\" data-expert=\"").append(e).append("\">e").append(e).append("</span>");
                if (experts.isEmpty()) out.append("<span class=\"muted\">no experts</span>");
                out.append("</div>");
            }
            out.append("</div>");
        }
        if (n != null) {
            double[] split = {n.computeSeconds(), n.waitSeconds(), n.transferSeconds()};
            out.append("<div class=\"split\">").append(Charts.stackedBar(full, split, SPLIT_COLORS, SPLIT_NAMES)).append("<span class=\"split-text\">step ").append(n.step())
                    .append(": ").append(Charts.seconds(split[0])).append(" / ").append(Charts.seconds(split[1])).append(" / ").append(Charts.seconds(split[2])).append("</span></div>");
            out.append("<dl class=\"traffic\"><dt>sent</dt><dd>").append(Charts.bytes(n.bytesSent())).append(" · ").append(n.framesSent()).append(" frames</dd>")
                    .append("<dt>received</dt><dd>").append(Charts.bytes(n.bytesReceived())).append(" · ").append(n.framesReceived()).append(" frames</dd>");
            if (total != null) {
                out.append("<dt>run total</dt><dd>").append(Charts.bytes(total[0])).append(" out · ").append(Charts.bytes(total[1])).append(" in</dd>");
            }
            long dropped = 0;
            StringBuilder causes = new StringBuilder();
            for (Map.Entry<String, Long> d : n.framesDropped().entrySet()) {
                dropped += d.getValue();
                causes.append(causes.length() == 0 ? "" : ", ").append(d.getKey()).append(' ').append(d.getValue());
            }
            out.append("<dt>dropped</dt><dd").append(dropped > 0 ? " class=\"warn\"" : "").append('>').append(dropped == 0 ? "none" : esc(causes.toString())).append("</dd></dl>");
        } else {
            out.append("<p class=\"muted\">no nodes.jsonl line yet</p>");
        }
        return out.append("</article>").toString();
    }

    private static List<Series> perNode(NavigableMap<Integer, Map<String, NodeStep>> nodes, List<String> names, ToDoubleFunction<NodeStep> f) {
        List<Series> out = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            List<double[]> points = new ArrayList<>();
            for (Map.Entry<Integer, Map<String, NodeStep>> e : nodes.entrySet()) {
                NodeStep n = e.getValue().get(names.get(i));
                if (n != null) points.add(new double[] {e.getKey(), f.applyAsDouble(n)});
            }
            if (!points.isEmpty()) out.add(Series.line(names.get(i), Charts.color(i), column(points, 0), column(points, 1)));
        }
        return out;
    }

    private static double sum(double... values) {
        double s = 0;
        for (double v : values) if (Double.isFinite(v)) s += v;
        return s;
    }

    private static String events(RunRecords run) {
        List<RunRecords.Event> events = run.events();
        if (events.isEmpty()) return "";
        StringBuilder out = new StringBuilder("<details class=\"events\" open=\"open\"><summary>Events (newest first, ").append(events.size())
                .append(" in all, ").append(run.recoveries()).append(" recoveries)</summary><div class=\"table-wrap\"><table><thead><tr>")
                .append("<th class=\"text\">time</th><th class=\"text\">event</th><th>step</th><th class=\"text\">node</th><th class=\"text\">reason</th><th>took</th></tr></thead><tbody>");
        for (int i = events.size() - 1; i >= Math.max(0, events.size() - EVENTS_SHOWN); i--) {
            RunRecords.Event e = events.get(i);
            out.append("<tr class=\"event-").append(esc(e.event())).append("\"><td class=\"text\">").append(esc(e.time())).append("</td><td class=\"text\">").append(esc(e.event()))
                    .append("</td><td>").append(e.step() >= 0 ? Integer.toString(e.step()) : "").append("</td><td class=\"text\">").append(esc(e.node()))
                    .append("</td><td class=\"text\">").append(esc(e.reason().isEmpty() ? e.checkpoint() : e.reason())).append("</td><td>")
                    .append(Double.isNaN(e.seconds()) ? "" : Charts.seconds(e.seconds())).append("</td></tr>");
        }
        return out.append("</tbody></table></div></details>").toString();
    }

    // ----- experiment

    /** The experiment's runs side by side: the accuracy table and every run's loss on one chart. */
    static String comparison(Workspace workspace) {
        List<RunRecords> runs = workspace.runs();
        JsonNode table = workspace.comparison();
        StringBuilder out = new StringBuilder();
        out.append(table != null && table.isArray() ? comparisonTable(table, runs) : liveTable(runs));
        List<Series> losses = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            RunRecords r = runs.get(i);
            synchronized (r) {
                NavigableMap<Integer, Step> steps = r.steps();
                double[] x = new double[steps.size()], y = new double[steps.size()];
                int k = 0;
                for (Step s : steps.values()) {
                    x[k] = s.step();
                    y[k++] = Double.isNaN(s.taskLoss()) ? s.loss() : s.taskLoss();
                }
                losses.add(Series.line(r.name() + (r.adapter().isEmpty() ? "" : " (" + r.adapter() + ")"), Charts.color(i), x, y));
            }
        }
        out.append("<div class=\"charts\">").append(Charts.lineChart("run-losses", "Task loss of every run", "step", "task loss", losses, List.of())).append("</div>");
        return out.toString();
    }

    private static String comparisonTable(JsonNode table, List<RunRecords> runs) {
        List<String> tasks = new ArrayList<>();
        for (JsonNode row : table) row.path("accuracy").fieldNames().forEachRemaining(t -> {
            if (!tasks.contains(t)) tasks.add(t);
        });
        double[] best = new double[tasks.size() + 1];
        Arrays.fill(best, Double.NEGATIVE_INFINITY);
        for (JsonNode row : table) {
            for (int t = 0; t < tasks.size(); t++) best[t] = Math.max(best[t], row.path("accuracy").path(tasks.get(t)).asDouble(Double.NEGATIVE_INFINITY));
            best[tasks.size()] = Math.max(best[tasks.size()], row.path("average").asDouble(Double.NEGATIVE_INFINITY));
        }
        StringBuilder out = new StringBuilder("<div class=\"table-wrap\"><table class=\"comparison\" data-source=\"comparison.json\"><thead><tr><th>run</th><th class=\"text\">adapter</th><th>trainable params</th>");
        for (String t : tasks) out.append("<th>").append(esc(t)).append("</th>");
        out.append("<th>average</th><th>tokens/s</th><th>wall time</th></tr></thead><tbody>");
        for (JsonNode row : table) {
            String run = row.path("run").asText();
            out.append("<tr data-run=\"").append(esc(run)).append("\"><td class=\"name\">").append(esc(run)).append("</td>");
            if (row.has("error")) {
                out.append("<td colspan=\"").append(tasks.size() + 5).append("\" class=\"warn\">failed: ").append(esc(row.path("error").asText())).append("</td></tr>");
                continue;
            }
            out.append("<td class=\"text\">").append(esc(row.path("adapter").asText())).append("</td><td>")
                    .append(String.format(Locale.ROOT, "%,d", row.path("trainable_parameters").asLong())).append("</td>");
            for (int t = 0; t < tasks.size(); t++) accuracyCell(out, row.path("accuracy").path(tasks.get(t)).asDouble(Double.NaN), best[t]);
            accuracyCell(out, row.path("average").asDouble(Double.NaN), best[tasks.size()]);
            out.append("<td>").append(num(row.path("tokens_per_s").asDouble(Double.NaN))).append("</td><td>")
                    .append(Charts.duration(row.path("wall_seconds").asDouble(Double.NaN))).append("</td></tr>");
        }
        out.append("</tbody></table></div><p class=\"note\">From comparison.json; the best accuracy of each column in bold.</p>");
        return out.toString();
    }

    /** While the experiment runs: each run's progress and, once written, its eval.json. */
    private static String liveTable(List<RunRecords> runs) {
        List<String> tasks = new ArrayList<>();
        for (RunRecords r : runs) {
            synchronized (r) {
                if (r.scores() != null) for (RunRecords.Score s : r.scores()) if (!tasks.contains(s.task())) tasks.add(s.task());
            }
        }
        StringBuilder out = new StringBuilder("<div class=\"table-wrap\"><table class=\"comparison\" data-source=\"eval.json\"><thead><tr><th>run</th><th class=\"text\">adapter</th><th class=\"text\">status</th><th>step</th>");
        for (String t : tasks) out.append("<th>").append(esc(t)).append("</th>");
        out.append("<th>average</th><th>task loss</th></tr></thead><tbody>");
        for (RunRecords r : runs) {
            synchronized (r) {
                out.append("<tr data-run=\"").append(esc(r.name())).append("\"><td class=\"name\">").append(esc(r.name())).append("</td><td class=\"text\">").append(esc(r.adapter()))
                        .append("</td><td class=\"text\">").append(esc(status(r))).append("</td><td>").append(r.lastStep())
                        .append(r.plannedSteps() > 0 ? " / " + r.plannedSteps() : "").append("</td>");
                double sum = 0;
                int n = 0;
                for (String t : tasks) {
                    double acc = Double.NaN;
                    if (r.scores() != null) for (RunRecords.Score s : r.scores()) if (s.task().equals(t)) acc = s.accuracy();
                    accuracyCell(out, acc, Double.NaN);
                    if (!Double.isNaN(acc)) {
                        sum += acc;
                        n++;
                    }
                }
                accuracyCell(out, n == 0 ? Double.NaN : sum / n, Double.NaN);
                Step last = r.steps().isEmpty() ? null : r.steps().lastEntry().getValue();
                out.append("<td>").append(last == null ? "–" : num(last.taskLoss())).append("</td></tr>");
            }
        }
        out.append("</tbody></table></div><p class=\"note\">comparison.json is written when the experiment ends; until then each run's eval.json.</p>");
        return out.toString();
    }

    private static void accuracyCell(StringBuilder out, double accuracy, double best) {
        boolean isBest = !Double.isNaN(accuracy) && accuracy == best;
        out.append("<td class=\"accuracy").append(isBest ? " best" : "").append("\">")
                .append(Double.isNaN(accuracy) ? "–" : String.format(Locale.ROOT, "%.3f", accuracy)).append("</td>");
    }
}
