package dev.moelora.cluster.bench;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.dashboard.Charts;
import dev.moelora.cluster.setup.TaskData;
import dev.moelora.model.data.Example;
import dev.moelora.model.data.Task;
import dev.moelora.model.data.TaskFormat;
import dev.moelora.model.tokenizer.WordPieceTokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;

/**
 * Measured, not asserted: how the MoELoRA step time grows with the number of experts, of expert
 * nodes and of tokens per step, one axis at a time around a base point, for the runtimes of
 * {@link RuntimeBench} (single-process, colocated in one JVM, distributed over a router JVM and
 * N expert JVMs on 127.0.0.1). The workload is RuntimeBench's (all-MiniLM-L6-v2, generated suite,
 * top-2, expert rank 1 on query and value, so the adapter grows with E). Prints the machine, then
 * one table row per point as it finishes, and writes scaling.csv and scaling.svg (a panel per
 * axis: step time against the axis value on a log-2 axis, a line per runtime) into its work
 * directory.
 *
 * <p>Tokens per step are real (unpadded) tokens, as metrics.jsonl counts them: the generated
 * questions are short, so a target of T tokens becomes a batch of T / (mean real tokens per
 * training example) examples, and the table reports what the runs counted. The maximum length is
 * the suite's longest sequence, so nothing is cut and the model reserves no unused room. A step
 * of more than {@code microTokens} tokens is several micro-batches of at most that many
 * (train.grad-accum, tokens per step being their sum): the model reserves its buffers for one
 * micro-batch, and one micro-batch of 8192 real tokens took over 8 GB in one JVM, more than a
 * router JVM beside the benchmark's own fits on a 24 GB machine.
 *
 * <p>Each single-process and colocated run is a fresh child JVM ({@link TimedRuns#inChildJvm}):
 * run one after another in this JVM, their native ND4J buffers piled up (19 GB resident at the
 * 8192-token point, then the OOM killer). A distributed run's coordinator stays in this JVM: it
 * holds no model (it draws batches and sends requests; the router and the experts, in their own
 * JVMs, hold the tensors), ND4J only writing the final adapter of a few small expert tensors.
 */
public final class ScalingBench {
    /** The axes, in the order they are swept. */
    public static final List<String> AXES = List.of("experts", "nodes", "tokens");
    /** A file in the work directory saying an earlier sweep made it, so it may be emptied. */
    private static final String MARKER = ".scaling-bench";

    /** The runtimes compared at every point. */
    public enum Runtime {
        SINGLE_PROCESS("single-process"), COLOCATED("colocated"), DISTRIBUTED("distributed");

        public final String label;

        Runtime(String label) {
            this.label = label;
        }

        public static Runtime of(String label) {
            for (Runtime r : values()) if (r.label.equals(label)) return r;
            throw new IllegalArgumentException("a runtime is single-process, colocated or distributed; got '" + label + "'");
        }
    }

    /** The point every axis is swept around: experts per module, expert nodes, target real tokens per step. */
    public record Base(int experts, int nodes, int tokens) {}

    /**
     * @param axes    which of {@link #AXES} to sweep
     * @param values  each swept axis's values
     * @param warmup  untimed steps per run; {@code steps} timed ones follow
     * @param microTokens  the most tokens of one micro-batch
     */
    public record Options(List<String> axes, Map<String, List<Integer>> values, Base base, List<Runtime> runtimes, int warmup, int steps,
                          int microTokens) {
        public Options {
            if (microTokens < 1) throw new IllegalArgumentException("tokens per micro-batch must be >= 1, got " + microTokens);
            if (axes.isEmpty()) throw new IllegalArgumentException("give at least one axis of " + AXES);
            for (String a : axes) {
                if (!AXES.contains(a)) throw new IllegalArgumentException("an axis is one of " + AXES + "; got '" + a + "'");
                if (values.getOrDefault(a, List.of()).isEmpty()) throw new IllegalArgumentException("axis " + a + " has no values");
            }
            if (runtimes.isEmpty()) throw new IllegalArgumentException("give at least one runtime");
            if (steps < 1 || warmup < 0) throw new IllegalArgumentException("need steps >= 1 and warmup >= 0, got " + steps + " and " + warmup);
            check(base.experts(), base.nodes(), base.tokens());
            for (String a : axes) {
                for (int v : values.get(a)) {
                    check(a.equals("experts") ? v : base.experts(), a.equals("nodes") ? v : base.nodes(), a.equals("tokens") ? v : base.tokens());
                }
            }
        }

        private static void check(int experts, int nodes, int tokens) {
            if (experts < 2) throw new IllegalArgumentException("experts must be >= 2 (top-2 routing), got " + experts);
            if (nodes < 1 || nodes > experts) {
                throw new IllegalArgumentException("expert nodes must be between 1 and the experts (" + experts + "), got " + nodes);
            }
            if (tokens < 1) throw new IllegalArgumentException("tokens per step must be >= 1, got " + tokens);
        }
    }

    /** One point of a sweep: the axis it lies on, its settings, the micro-batches (each of {@code batch} examples) that give its tokens. */
    record Point(String axis, int experts, int nodes, int targetTokens, int batch, int microBatches) {
        int value() {
            return switch (axis) {
                case "experts" -> experts;
                case "nodes" -> nodes;
                default -> targetTokens;
            };
        }
    }

    /** A measured point: real tokens per step (mean over the timed steps) and each runtime's median seconds per step. */
    record Row(Point point, double tokens, Map<Runtime, Double> seconds) {}

    private ScalingBench() {}

    public static void run(PrintStream out, Options options, Path work) throws Exception {
        long t0 = System.nanoTime();
        out.println(Machine.describe());
        out.println("load at start: " + Machine.load());
        prepare(work);
        Sizing sizing = Sizing.of(work);
        List<Point> points = points(options, sizing);
        out.printf(Locale.ROOT, "MoELoRA step scaling: all-MiniLM-L6-v2, generated suite (%.1f real tokens per example, max length %d), top-2, "
                        + "expert rank 1 on query and value; base E %d, %d expert nodes, %d tokens per step; micro-batches of at most %d tokens "
                        + "(batch: examples, or micro-batches x examples); median of %d steps after %d warm-up%n",
                sizing.tokensPerExample, sizing.maxLength, options.base().experts(), options.base().nodes(), options.base().tokens(),
                options.microTokens(), options.steps(), options.warmup());
        out.println(header(options.runtimes()));
        Map<String, TimedRuns.Steps> measured = new HashMap<>();
        List<Row> rows = new ArrayList<>();
        for (Point p : points) {
            Map<Runtime, Double> seconds = new EnumMap<>(Runtime.class);
            double tokens = Double.NaN;
            for (Runtime r : options.runtimes()) {
                TimedRuns.Steps steps = measured.get(key(r, p));
                if (steps == null) {
                    steps = measure(work, r, p, sizing, options).timed(options.warmup());
                    measured.put(key(r, p), steps);
                }
                // Same settings, same seed: every runtime trains the same batches (bit-identical runs).
                if (!Double.isNaN(tokens) && tokens != steps.meanTokens()) {
                    throw new IllegalStateException(r.label + " counted " + steps.meanTokens() + " tokens per step at " + describe(p)
                            + ", another runtime " + tokens + ": the runs did not train the same batches");
                }
                tokens = steps.meanTokens();
                seconds.put(r, steps.medianSeconds());
            }
            Row row = new Row(p, tokens, seconds);
            rows.add(row);
            out.println(line(row, options.runtimes()));
        }
        Path csv = work.resolve("scaling.csv"), svg = work.resolve("scaling.svg");
        Files.writeString(csv, csv(rows, options.runtimes()));
        Files.writeString(svg, svg(rows, options));
        out.println("wrote " + csv.toAbsolutePath());
        out.println("wrote " + svg.toAbsolutePath());
        out.printf(Locale.ROOT, "sweep took %.0f s; load at end: %s%n", (System.nanoTime() - t0) / 1e9, Machine.load());
    }

    /** Empties the work directory when it is new, empty or an earlier sweep's; refuses any other. */
    private static void prepare(Path work) throws IOException {
        if (Files.isDirectory(work)) {
            boolean empty;
            try (var entries = Files.list(work)) {
                empty = entries.findAny().isEmpty();
            }
            if (!empty && !Files.exists(work.resolve(MARKER))) {
                throw new IllegalArgumentException("the scaling work directory " + work.toAbsolutePath()
                        + " holds files but no " + MARKER + " of an earlier sweep: give a new or empty directory");
            }
            TimedRuns.deleteTree(work);
        }
        Files.createDirectories(work);
        Files.writeString(work.resolve(MARKER), "a scaling sweep's scratch directory, emptied by the next one\n");
    }

    /**
     * The data's shape: the suite's mean real tokens per training example and its longest sequence,
     * encoded as TaskModel does (one question-choice pair per choice for multiple choice, else the
     * question). It only picks batch sizes and the reservation; the table reports what the runs counted.
     */
    record Sizing(String common, double tokensPerExample, int maxLength) {
        static final String DATA = "data.generated { train-per-task = 200, test-per-task = 4 }\n";

        static Sizing of(Path work) throws IOException {
            WordPieceTokenizer tokenizer = WordPieceTokenizer.minilm();
            long total = 0;
            int examples = 0, longest = 0;
            for (Task task : TaskData.load(RunConfig.parse(DATA))) {
                for (Example e : task.train()) {
                    examples++;
                    List<Integer> lengths = new ArrayList<>();
                    if (task.format() == TaskFormat.MULTIPLE_CHOICE) for (String c : e.choices()) lengths.add(tokenizer.encodePair(e.question(), c, 512).length());
                    else lengths.add(tokenizer.encode(e.question(), 512).length());
                    for (int l : lengths) {
                        total += l;
                        longest = Math.max(longest, l);
                    }
                }
            }
            String common = DATA + """
                    adapter.type = moelora
                    data.max-length = %d
                    checkpoint { every = 0, every-seconds = 0 }
                    dashboard.port = 0
                    run.dir = "%s"
                    """.formatted(longest, work.toString().replace("\\", "/"));
            return new Sizing(common, (double) total / examples, longest);
        }

        /** Examples per micro-batch for {@code tokens} real tokens in {@code microBatches} micro-batches. */
        int batchFor(int tokens, int microBatches) {
            return Math.max(1, (int) Math.round(tokens / tokensPerExample / microBatches));
        }
    }

    /** Every axis's points in order, each the base point with that axis's value. */
    static List<Point> points(Options options, Sizing sizing) {
        Base b = options.base();
        List<Point> out = new ArrayList<>();
        for (String axis : options.axes()) {
            for (int v : options.values().get(axis)) {
                int experts = axis.equals("experts") ? v : b.experts(), nodes = axis.equals("nodes") ? v : b.nodes();
                int tokens = axis.equals("tokens") ? v : b.tokens();
                int micro = (tokens + options.microTokens() - 1) / options.microTokens();
                out.add(new Point(axis, experts, nodes, tokens, sizing.batchFor(tokens, micro), micro));
            }
        }
        return out;
    }

    /** A run's name and cache key: what decides its figures (single-process has no nodes). */
    private static String key(Runtime r, Point p) {
        return r.label + "-e" + p.experts() + "-b" + p.batch() + "x" + p.microBatches() + (r == Runtime.SINGLE_PROCESS ? "" : "-n" + p.nodes());
    }

    private static TimedRuns.Steps measure(Path work, Runtime r, Point p, Sizing sizing, Options options) throws Exception {
        String conf = sizing.common() + "adapter.experts = %d\ntrain { steps = %d, batch-size = %d, grad-accum = %d, eval-batch-size = 8, warmup-steps = 0 }\n"
                .formatted(p.experts(), options.warmup() + options.steps(), p.batch(), p.microBatches());
        return switch (r) {
            case SINGLE_PROCESS -> TimedRuns.inChildJvm(TimedRuns.write(work, key(r, p), conf));
            case COLOCATED -> TimedRuns.inChildJvm(TimedRuns.write(work, key(r, p), conf + "runtime.mode = local\nruntime.expert-nodes = " + p.nodes() + "\n"));
            // A router JVM reached 3.3 GB resident on a micro-batch of 2048 tokens with -Xmx3g (ND4J memory is off-heap).
            case DISTRIBUTED -> TimedRuns.distributed(work, key(r, p), conf, p.nodes(), "4g");
        };
    }

    private static String describe(Point p) {
        return String.format(Locale.ROOT, "E %d, %d expert nodes, %d micro-batches of %d", p.experts(), p.nodes(), p.microBatches(), p.batch());
    }

    // ----- table, CSV, plot

    private static final String ROW = "%-8s %6s %4s %5s %8s %11s";

    private static String header(List<Runtime> runtimes) {
        StringBuilder h = new StringBuilder(String.format(Locale.ROOT, ROW, "axis", "value", "E", "nodes", "batch", "tokens/step"));
        for (Runtime r : runtimes) h.append(String.format(Locale.ROOT, " %16s", r.label + " s/step"));
        for (Runtime r : ratios(runtimes)) h.append(String.format(Locale.ROOT, " %18s", r.label + "/single"));
        for (Runtime r : runtimes) h.append(String.format(Locale.ROOT, " %16s", r.label + " tok/s"));
        return h.toString();
    }

    private static String line(Row row, List<Runtime> runtimes) {
        Point p = row.point();
        StringBuilder l = new StringBuilder(String.format(Locale.ROOT, ROW, p.axis(), p.value(), p.experts(), p.nodes(),
                p.microBatches() == 1 ? Integer.toString(p.batch()) : p.microBatches() + "x" + p.batch(), String.format(Locale.ROOT, "%.0f", row.tokens())));
        for (Runtime r : runtimes) l.append(String.format(Locale.ROOT, " %16.3f", row.seconds().get(r)));
        for (Runtime r : ratios(runtimes)) {
            l.append(String.format(Locale.ROOT, " %18s", String.format(Locale.ROOT, "%.2fx", row.seconds().get(r) / row.seconds().get(Runtime.SINGLE_PROCESS))));
        }
        for (Runtime r : runtimes) l.append(String.format(Locale.ROOT, " %16.0f", row.tokens() / row.seconds().get(r)));
        return l.toString();
    }

    /** The runtimes compared with single-process (none when single-process was not run). */
    private static List<Runtime> ratios(List<Runtime> runtimes) {
        if (!runtimes.contains(Runtime.SINGLE_PROCESS)) return List.of();
        return runtimes.stream().filter(r -> r != Runtime.SINGLE_PROCESS).toList();
    }

    private static String column(Runtime r) {
        return r.label.replace('-', '_');
    }

    /** One line per point: its settings, real tokens per step, then per runtime seconds per step, ratio to single-process, tokens/s. */
    static String csv(List<Row> rows, List<Runtime> runtimes) {
        StringJoiner head = new StringJoiner(",");
        for (String c : List.of("axis", "value", "experts", "expert_nodes", "micro_batches", "batch", "tokens_per_step")) head.add(c);
        for (Runtime r : runtimes) head.add(column(r) + "_s_per_step");
        for (Runtime r : ratios(runtimes)) head.add(column(r) + "_over_single_process");
        for (Runtime r : runtimes) head.add(column(r) + "_tokens_per_s");
        StringBuilder out = new StringBuilder(head.toString()).append('\n');
        for (Row row : rows) {
            Point p = row.point();
            StringJoiner l = new StringJoiner(",");
            l.add(p.axis()).add(Integer.toString(p.value())).add(Integer.toString(p.experts())).add(Integer.toString(p.nodes()))
                    .add(Integer.toString(p.microBatches())).add(Integer.toString(p.batch())).add(String.format(Locale.ROOT, "%.1f", row.tokens()));
            for (Runtime r : runtimes) l.add(String.format(Locale.ROOT, "%.4f", row.seconds().get(r)));
            for (Runtime r : ratios(runtimes)) l.add(String.format(Locale.ROOT, "%.3f", row.seconds().get(r) / row.seconds().get(Runtime.SINGLE_PROCESS)));
            for (Runtime r : runtimes) l.add(String.format(Locale.ROOT, "%.1f", row.tokens() / row.seconds().get(r)));
            out.append(l).append('\n');
        }
        return out.toString();
    }

    private static final int PANEL_W = 520, PANEL_H = 236, PAD = 16, TITLE_H = 44, CAPTION_H = 22;

    /**
     * One standalone SVG document: a title, a legend (a colour per runtime) and, per swept axis, a
     * panel of step time against the axis value (real tokens per step on the tokens axis).
     */
    static String svg(List<Row> rows, Options options) {
        List<String> axes = options.axes();
        int height = TITLE_H + axes.size() * (CAPTION_H + PANEL_H + PAD);
        StringBuilder out = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.append(String.format(Locale.ROOT, "<svg xmlns=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">%n",
                Charts.SVG_NS, PANEL_W, height, PANEL_W, height));
        out.append("<style>\ntext { font-family: sans-serif; }\n.title { font-size: 14px; font-weight: 600; fill: #22262e; }\n")
                .append(".caption { font-size: 12px; fill: #3a3f4b; }\n.key { font-size: 11px; fill: #3a3f4b; }\n")
                .append(Charts.plotStyle()).append("</style>\n");
        out.append(String.format(Locale.ROOT, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>%n", PANEL_W, height));
        out.append(String.format(Locale.ROOT, "<text class=\"title\" x=\"%d\" y=\"18\">%s</text>%n", PAD,
                Charts.esc("MoELoRA step time (base: E " + options.base().experts() + ", " + options.base().nodes() + " expert nodes, "
                        + options.base().tokens() + " tokens per step)")));
        int x = PAD;
        for (int i = 0; i < options.runtimes().size(); i++) {
            Runtime r = options.runtimes().get(i);
            out.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"32\" y2=\"32\" stroke=\"%s\" stroke-width=\"2\"/>", x, x + 18, Charts.color(i)));
            out.append(String.format(Locale.ROOT, "<text class=\"key\" x=\"%d\" y=\"36\">%s</text>%n", x + 22, Charts.esc(r.label)));
            x += 34 + 7 * r.label.length();
        }
        int y = TITLE_H;
        for (String axis : axes) {
            List<Row> on = rows.stream().filter(r -> r.point().axis().equals(axis)).sorted(java.util.Comparator.comparingDouble(r -> xOf(r))).toList();
            List<Charts.Series> series = new ArrayList<>();
            for (int i = 0; i < options.runtimes().size(); i++) {
                Runtime r = options.runtimes().get(i);
                series.add(Charts.Series.line(r.label, Charts.color(i), on.stream().mapToDouble(ScalingBench::xOf).toArray(),
                        on.stream().mapToDouble(row -> row.seconds().get(r)).toArray()));
            }
            out.append(String.format(Locale.ROOT, "<text class=\"caption\" x=\"%d\" y=\"%d\">%s</text>%n", PAD, y + 15, Charts.esc(caption(axis))));
            out.append(String.format(Locale.ROOT, "<svg x=\"0\" y=\"%d\" width=\"%d\" height=\"%d\">", y + CAPTION_H, PANEL_W, PANEL_H));
            out.append(Charts.plot(caption(axis), label(axis), "s / step", series, Charts.XAxis.LOG2)).append("</svg>\n");
            y += CAPTION_H + PANEL_H + PAD;
        }
        return out.append("</svg>\n").toString();
    }

    /** Where a row lies on its panel's x axis: the axis value, or on the tokens axis the tokens the runs counted. */
    private static double xOf(Row row) {
        return row.point().axis().equals("tokens") ? row.tokens() : row.point().value();
    }

    private static String caption(String axis) {
        return switch (axis) {
            case "experts" -> "Step time vs experts per module";
            case "nodes" -> "Step time vs expert nodes";
            default -> "Step time vs tokens per step";
        };
    }

    private static String label(String axis) {
        return switch (axis) {
            case "experts" -> "experts (E)";
            case "nodes" -> "expert nodes";
            default -> "real tokens per step";
        };
    }
}
