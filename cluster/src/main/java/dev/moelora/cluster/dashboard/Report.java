package dev.moelora.cluster.dashboard;

import static dev.moelora.cluster.dashboard.Charts.esc;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code moelora report}: the dashboard's panels at the final state of a run directory or an
 * experiment directory, written as one self-contained {@code report.html}: inline SVG and CSS, no
 * script needed to see it, no reference to anything outside the file. The panels are the same
 * markup the live page shows ({@link Views}); the heatmaps show the last complete step. It reads
 * the directory once and writes only report.html.
 */
public final class Report {
    public static final String FILE = "report.html";
    private static final Map<String, String> ASSETS = new ConcurrentHashMap<>();

    private Report() {}

    /** Writes root/report.html and returns its path; IllegalArgumentException when root holds no run. */
    public static Path write(Path root) throws IOException {
        if (!Files.isDirectory(root)) throw new IllegalArgumentException(root + " is not a directory");
        Workspace workspace = new Workspace(root, change -> {});
        workspace.poll();
        if (workspace.runs().isEmpty()) {
            throw new IllegalArgumentException(root + " holds no run records (metrics.jsonl, routing.jsonl, ...), nor sub-directories that do");
        }
        Path out = root.resolve(FILE);
        Files.writeString(out, html(workspace, Alarms.Settings.DEFAULT));
        return out;
    }

    static String html(Workspace workspace, Alarms.Settings settings) {
        StringBuilder out = new StringBuilder("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><title>moelora report: ")
                .append(esc(workspace.root().getFileName() == null ? workspace.root().toString() : workspace.root().getFileName().toString()))
                .append("</title><style>\n").append(asset("style.css")).append("\n</style></head><body class=\"report\">");
        out.append("<header class=\"top\"><h1>moelora <span>report</span></h1><span class=\"root\">").append(esc(workspace.root().toString()))
                .append("</span><span class=\"connection\" data-state=\"static\">written ").append(Instant.now().truncatedTo(ChronoUnit.SECONDS)).append("</span></header>");
        List<RunRecords> runs = workspace.runs();
        if (workspace.experiment()) {
            out.append("<main class=\"comparison-view\">").append(Views.panel("comparison", "Experiment: runs side by side", Views.comparison(workspace)));
            out.append("<nav class=\"toc\">runs: ");
            for (RunRecords r : runs) out.append("<a href=\"#run-").append(esc(r.name())).append("\">").append(esc(r.name())).append("</a> ");
            out.append("</nav></main>");
        }
        for (RunRecords run : runs) {
            Views.RunView v = Views.run(run, -1, settings);
            out.append("<main class=\"run-view\" id=\"run-").append(esc(run.name())).append("\" data-run=\"").append(esc(run.name())).append("\">");
            out.append("<h2 class=\"run-title\">").append(esc(run.name())).append("</h2>");
            out.append(Views.panel("summary", "", v.summary()));
            out.append(Views.panel("alarms", "Alarms", v.alarms()));
            out.append(Views.panel("heatmaps", "Expert load" + (v.step() >= 0 ? " at step " + v.step() : ""), v.heatmaps()));
            out.append(Views.panel("routing", "Routing over steps", v.routing()));
            out.append(Views.panel("training", "Training", v.training()));
            out.append(Views.panel("placement", "Placement and nodes", v.placement()));
            out.append("</main>");
        }
        return out.append("<footer>written by moelora report from the run files; every plot is inline SVG</footer></body></html>\n").toString();
    }

    /** A file of the page (resources dashboard/NAME), read once. */
    static String asset(String name) {
        return ASSETS.computeIfAbsent(name, n -> {
            try (InputStream in = Report.class.getClassLoader().getResourceAsStream("dashboard/" + n)) {
                if (in == null) throw new IllegalStateException("dashboard/" + n + " is missing from the classpath");
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
