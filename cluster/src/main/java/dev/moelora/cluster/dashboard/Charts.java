package dev.moelora.cluster.dashboard;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;

/**
 * Plain SVG charts as markup strings, the same for the live page and the report: line charts over
 * steps (a band around a line shows a spread), colour scales, number formats; the benchmarks plot
 * through {@link #plot} (also over a log-2 x axis) with {@link #plotStyle}. Nothing here needs a
 * script: hover text is an SVG {@code <title>}. Output is well-formed XML (every value escaped).
 * It knows nothing of runs or records.
 */
public final class Charts {
    public static final String SVG_NS = "http://www.w3.org/2000/svg";
    /** Categorical colours (Tableau 10): series, runs, nodes. */
    static final String[] PALETTE = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
    /** The sequential scale of the heatmaps (viridis, dark = little). */
    private static final int[][] VIRIDIS = {{0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3e, 0x49, 0x89}, {0x31, 0x68, 0x8e}, {0x26, 0x82, 0x8e},
            {0x1f, 0x9e, 0x89}, {0x35, 0xb7, 0x79}, {0x6e, 0xce, 0x58}, {0xb5, 0xde, 0x2b}, {0xfd, 0xe7, 0x25}};

    private static final int W = 520, H = 236, LEFT = 60, RIGHT = 16, TOP = 12, BOTTOM = 40;
    private static final int MAX_POINTS = 800, MAX_HOVER = 100;

    private Charts() {}

    /** How the x axis maps values: over steps (linear, integer ticks), or log 2 with a tick at every power of two in range. */
    public enum XAxis { STEPS, LOG2 }

    /** A line over steps; with low/high (same length as x) a shaded band around it. */
    public record Series(String name, String color, double[] x, double[] y, double[] low, double[] high, boolean dashed) {
        public static Series line(String name, String color, double[] x, double[] y) {
            return new Series(name, color, x, y, null, null, false);
        }

        static Series band(String name, String color, double[] x, double[] y, double[] low, double[] high) {
            return new Series(name, color, x, y, low, high, false);
        }
    }

    /** A dashed horizontal line at y, e.g. a threshold. */
    record Reference(double y, String label) {}

    public static String color(int i) {
        return PALETTE[Math.floorMod(i, PALETTE.length)];
    }

    /** A line chart in a figure with its title, axis labels and legend; "no data yet" when nothing is finite. */
    static String lineChart(String id, String title, String xLabel, String yLabel, List<Series> series, List<Reference> references) {
        StringBuilder out = new StringBuilder();
        out.append("<figure class=\"chart\" data-chart=\"").append(esc(id)).append("\"><figcaption>").append(esc(title)).append("</figcaption>");
        String svg = svg(title, xLabel, yLabel, series, references, XAxis.STEPS);
        if (svg == null) {
            return out.append("<p class=\"empty\">no data yet</p></figure>").toString();
        }
        out.append(svg);
        out.append("<div class=\"legend\">");
        for (Series s : series) {
            out.append("<span class=\"key\"><i class=\"").append(s.low() != null ? "swatch band" : s.dashed() ? "swatch dashed" : "swatch")
                    .append("\" style=\"background:").append(esc(s.color())).append("\"></i>").append(esc(s.name())).append("</span>");
        }
        for (Reference r : references) out.append("<span class=\"key\"><i class=\"swatch reference\"></i>").append(esc(r.label())).append("</span>");
        return out.append("</div></figure>").toString();
    }

    /**
     * The {@code <svg>} element of a line chart alone (no figure, no legend), 520 x 236 in its
     * viewBox, for a standalone SVG file; {@link #plotStyle} styles it there.
     *
     * @throws IllegalArgumentException when no point is finite, or on a log-2 axis an x is not positive
     */
    public static String plot(String title, String xLabel, String yLabel, List<Series> series, XAxis xAxis) {
        String svg = svg(title, xLabel, yLabel, series, List.of(), xAxis);
        if (svg == null) throw new IllegalArgumentException("nothing finite to plot in '" + title + "'");
        return svg;
    }

    /** The dashboard stylesheet's rules for a plot's parts, for an SVG file that has no page around it. */
    public static String plotStyle() {
        try (var in = Charts.class.getResourceAsStream("/dashboard/style.css")) {
            if (in == null) throw new IllegalStateException("dashboard/style.css is not on the classpath");
            StringBuilder css = new StringBuilder();
            for (String rule : new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).split("\n")) {
                if (rule.matches("^(\\.plot |\\.tick |\\.axis-label |polyline\\.series|\\.band |\\.reference|\\.hover rect ).*")) css.append(rule).append('\n');
            }
            return css.toString();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("reading dashboard/style.css", e);
        }
    }

    /** The plot of {@link #lineChart} and {@link #plot}; null when nothing is finite. */
    private static String svg(String title, String xLabel, String yLabel, List<Series> series, List<Reference> references, XAxis xAxis) {
        StringBuilder out = new StringBuilder();
        double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY, yMin = Double.POSITIVE_INFINITY, yMax = Double.NEGATIVE_INFINITY;
        for (Series s : series) {
            for (int i = 0; i < s.x().length; i++) {
                for (double v : new double[] {s.y()[i], s.low() == null ? Double.NaN : s.low()[i], s.high() == null ? Double.NaN : s.high()[i]}) {
                    if (!Double.isFinite(v)) continue;
                    xMin = Math.min(xMin, s.x()[i]);
                    xMax = Math.max(xMax, s.x()[i]);
                    yMin = Math.min(yMin, v);
                    yMax = Math.max(yMax, v);
                }
            }
        }
        if (xMin > xMax) return null;
        boolean log = xAxis == XAxis.LOG2;
        if (log && xMin <= 0) throw new IllegalArgumentException("a log-2 axis needs positive x, got " + num(xMin) + " in '" + title + "'");
        for (Reference r : references) {
            yMin = Math.min(yMin, r.y());
            yMax = Math.max(yMax, r.y());
        }
        if (log) {
            xMin = Math.pow(2, Math.floor(log2(xMin) + 1e-9)); // from a power of two to a power of two: the ends get ticks
            xMax = Math.pow(2, Math.ceil(log2(xMax) - 1e-9));
            if (xMin == xMax) {
                xMin /= 2;
                xMax *= 2;
            }
        } else if (xMin == xMax) {
            xMin -= 1;
            xMax += 1;
        }
        if (yMin == yMax) {
            double pad = yMin == 0 ? 1 : Math.abs(yMin) * 0.1;
            yMin -= pad;
            yMax += pad;
        }
        double[] yTicks = ticks(yMin, yMax, 5, false);
        yMin = Math.min(yMin, yTicks[0]);
        yMax = Math.max(yMax, yTicks[yTicks.length - 1]);
        double[] xTicks = log ? powersOfTwo(xMin, xMax, 8) : ticks(xMin, xMax, 6, true);
        Scale sx = new Scale(xMin, xMax, LEFT, W - RIGHT, log), sy = new Scale(yMin, yMax, H - BOTTOM, TOP, false);

        out.append("<svg xmlns=\"").append(SVG_NS).append("\" class=\"plot\" viewBox=\"0 0 ").append(W).append(' ').append(H)
                .append("\" role=\"img\" aria-label=\"").append(esc(title)).append("\">");
        out.append("<g class=\"grid\">");
        String[] yLabels = tickLabels(yTicks);
        for (int i = 0; i < yTicks.length; i++) {
            double y = sy.at(yTicks[i]);
            out.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", LEFT, W - RIGHT, y, y));
            out.append(String.format(Locale.ROOT, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", LEFT - 6, y + 4, esc(yLabels[i])));
        }
        for (double t : xTicks) {
            if (t < xMin || t > xMax) continue;
            double x = sx.at(t);
            out.append(String.format(Locale.ROOT, "<line class=\"xtick\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>", x, x, H - BOTTOM, H - BOTTOM + 4));
            out.append(String.format(Locale.ROOT, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", x, H - BOTTOM + 16, esc(num(t))));
        }
        out.append(String.format(Locale.ROOT, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>", LEFT, W - RIGHT, H - BOTTOM, H - BOTTOM));
        out.append("</g>");
        out.append(String.format(Locale.ROOT, "<text class=\"axis-label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>",
                (LEFT + W - RIGHT) / 2, H - 6, esc(xLabel)));
        out.append(String.format(Locale.ROOT, "<text class=\"axis-label\" transform=\"translate(14 %d) rotate(-90)\" text-anchor=\"middle\">%s</text>",
                (TOP + H - BOTTOM) / 2, esc(yLabel)));

        for (Series s : series) if (s.low() != null) band(out, s, sx, sy);
        for (Series s : series) line(out, s, sx, sy);
        for (Reference r : references) {
            double y = sy.at(r.y());
            out.append(String.format(Locale.ROOT, "<line class=\"reference\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", LEFT, W - RIGHT, y, y));
            out.append(String.format(Locale.ROOT, "<text class=\"reference-label\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", W - RIGHT - 4, y - 4, esc(r.label())));
        }
        hover(out, series, sx, log ? xLabel + " " : "step ");
        return out.append("</svg>").toString();
    }

    private static double log2(double v) {
        return Math.log(v) / Math.log(2);
    }

    /** Powers of two from min to max (both powers of two), every other one or sparser when there would be more than {@code count}. */
    private static double[] powersOfTwo(double min, double max, int count) {
        int lo = (int) Math.round(log2(min)), hi = (int) Math.round(log2(max));
        int stride = Math.max(1, (hi - lo + count - 1) / count);
        double[] out = new double[(hi - lo) / stride + 1];
        for (int i = 0; i < out.length; i++) out[i] = Math.pow(2, lo + i * stride);
        return out;
    }

    private static void band(StringBuilder out, Series s, Scale sx, Scale sy) {
        List<Integer> run = new ArrayList<>();
        for (int i : sample(s.x().length)) {
            if (Double.isFinite(s.low()[i]) && Double.isFinite(s.high()[i])) run.add(i);
            else bandPath(out, run, s, sx, sy);
        }
        bandPath(out, run, s, sx, sy);
    }

    /** One closed area along the highs and back along the lows of a run of finite points; empties the run. */
    private static void bandPath(StringBuilder out, List<Integer> run, Series s, Scale sx, Scale sy) {
        if (run.isEmpty()) return;
        StringBuilder d = new StringBuilder();
        for (int k = 0; k < run.size(); k++) {
            int i = run.get(k);
            d.append(k == 0 ? 'M' : 'L').append(String.format(Locale.ROOT, "%.1f %.1f", sx.at(s.x()[i]), sy.at(s.high()[i])));
        }
        for (int k = run.size() - 1; k >= 0; k--) {
            int i = run.get(k);
            d.append('L').append(String.format(Locale.ROOT, "%.1f %.1f", sx.at(s.x()[i]), sy.at(s.low()[i])));
        }
        out.append("<path class=\"band\" d=\"").append(d).append("Z\" fill=\"").append(esc(s.color())).append("\"/>");
        run.clear();
    }

    private static void line(StringBuilder out, Series s, Scale sx, Scale sy) {
        StringBuilder points = new StringBuilder();
        int n = 0;
        double lastX = 0, lastY = 0;
        for (int i : sample(s.x().length)) {
            double v = s.y()[i];
            if (!Double.isFinite(v)) {
                n = flush(out, s, points, n, lastX, lastY);
                continue;
            }
            lastX = sx.at(s.x()[i]);
            lastY = sy.at(v);
            points.append(String.format(Locale.ROOT, "%.1f,%.1f ", lastX, lastY));
            n++;
        }
        flush(out, s, points, n, lastX, lastY);
    }

    private static int flush(StringBuilder out, Series s, StringBuilder points, int n, double x, double y) {
        if (n == 1) {
            out.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", x, y, esc(s.color())));
        } else if (n > 1) {
            out.append("<polyline class=\"").append(s.dashed() ? "series dashed" : "series").append("\" stroke=\"").append(esc(s.color()))
                    .append("\" points=\"").append(points.toString().trim()).append("\"/>");
        }
        points.setLength(0);
        return 0;
    }

    /** Invisible columns over the plot, each with the values of every series at its x (after {@code prefix}) as hover text. */
    private static void hover(StringBuilder out, List<Series> series, Scale sx, String prefix) {
        TreeSet<Double> xs = new TreeSet<>();
        for (Series s : series) for (double x : s.x()) xs.add(x);
        Double[] all = xs.toArray(new Double[0]);
        if (all.length == 0) return;
        int bins = Math.min(all.length, MAX_HOVER);
        out.append("<g class=\"hover\">");
        for (int b = 0; b < bins; b++) {
            int first = (int) ((long) b * all.length / bins), last = (int) ((long) (b + 1) * all.length / bins) - 1;
            double x = all[last];
            double left = b == 0 ? sx.lo : (sx.at(all[first - 1]) + sx.at(all[first])) / 2;
            double right = b == bins - 1 ? sx.hi : (sx.at(all[last]) + sx.at(all[last + 1])) / 2;
            StringBuilder tip = new StringBuilder(prefix).append(num(x));
            for (Series s : series) {
                int i = Arrays.binarySearch(s.x(), x);
                if (i < 0) continue;
                tip.append('\n').append(s.name()).append(": ").append(num(s.y()[i]));
                if (s.low() != null) tip.append(" (").append(num(s.low()[i])).append(" – ").append(num(s.high()[i])).append(')');
            }
            out.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"><title>%s</title></rect>",
                    left, TOP, Math.max(0.5, right - left), H - BOTTOM - TOP, esc(tip.toString())));
        }
        out.append("</g>");
    }

    /** Indices of at most MAX_POINTS evenly spaced samples of n points, the last one always kept. */
    private static int[] sample(int n) {
        if (n <= MAX_POINTS) {
            int[] all = new int[n];
            for (int i = 0; i < n; i++) all[i] = i;
            return all;
        }
        int stride = (n + MAX_POINTS - 1) / MAX_POINTS;
        int count = (n - 1) / stride + 1 + ((n - 1) % stride == 0 ? 0 : 1);
        int[] out = new int[count];
        int k = 0;
        for (int i = 0; i < n; i += stride) out[k++] = i;
        if (k < count) out[k] = n - 1;
        return out;
    }

    /** About {@code count} round tick values (1, 2 or 5 times a power of ten) covering [min, max]. */
    static double[] ticks(double min, double max, int count, boolean integers) {
        double raw = (max - min) / count;
        double mag = Math.pow(10, Math.floor(Math.log10(raw)));
        double step = mag;
        for (double m : new double[] {1, 2, 5, 10}) {
            step = m * mag;
            if (step >= raw) break;
        }
        if (integers) step = Math.max(1, Math.round(step));
        double first = Math.floor(min / step) * step, last = Math.ceil(max / step) * step;
        int n = (int) Math.round((last - first) / step) + 1;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) out[i] = first + i * step;
        return out;
    }

    /** Tick labels as {@link #num}, or with as many digits as it takes to tell neighbours apart. */
    static String[] tickLabels(double[] ticks) {
        String[] labels = new String[ticks.length];
        for (int i = 0; i < ticks.length; i++) labels[i] = num(ticks[i]);
        if (ticks.length < 2 || new java.util.HashSet<>(Arrays.asList(labels)).size() == labels.length) return labels;
        double step = Math.abs(ticks[1] - ticks[0]), largest = Math.max(Math.abs(ticks[0]), Math.abs(ticks[ticks.length - 1]));
        int digits = (int) Math.ceil(Math.log10(largest / step)) + 1;
        for (int i = 0; i < ticks.length; i++) {
            labels[i] = ticks[i] == 0 ? "0" : new BigDecimal(ticks[i]).round(new MathContext(digits)).stripTrailingZeros().toPlainString();
        }
        return labels;
    }

    /** Maps [min, max] onto [lo, hi] pixels, in log 2 when {@code log}. */
    private record Scale(double min, double max, double lo, double hi, boolean log) {
        double at(double v) {
            return log ? lo + (log2(v) - log2(min)) / (log2(max) - log2(min)) * (hi - lo) : lo + (v - min) / (max - min) * (hi - lo);
        }
    }

    /** The heatmap colour of t in [0, 1] (clamped). */
    static String viridis(double t) {
        double c = Math.max(0, Math.min(1, Double.isNaN(t) ? 0 : t)) * (VIRIDIS.length - 1);
        int i = (int) Math.min(VIRIDIS.length - 2, Math.floor(c));
        double f = c - i;
        int[] a = VIRIDIS[i], b = VIRIDIS[i + 1];
        return String.format(Locale.ROOT, "#%02x%02x%02x", mix(a[0], b[0], f), mix(a[1], b[1], f), mix(a[2], b[2], f));
    }

    /** Text on a cell of colour {@link #viridis}(t) is readable in white below this, in black above. */
    static boolean darkCell(double t) {
        return t < 0.62;
    }

    private static int mix(int a, int b, double f) {
        return (int) Math.round(a + (b - a) * f);
    }

    /** A horizontal colour bar for [0, 1] of the scale with labels at the given fractions. */
    static String colorLegend(String title, double[] at, String[] labels) {
        StringBuilder out = new StringBuilder("<div class=\"scale-legend\"><span class=\"scale-title\">").append(esc(title)).append("</span>");
        int w = 240, h = 12;
        out.append("<svg xmlns=\"").append(SVG_NS).append("\" viewBox=\"0 0 ").append(w + 40).append(" 34\" class=\"scale\">");
        int steps = 40;
        for (int i = 0; i < steps; i++) {
            out.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"2\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>",
                    20 + (double) i * w / steps, (double) w / steps + 0.4, h, viridis((i + 0.5) / steps)));
        }
        for (int i = 0; i < at.length; i++) {
            double x = 20 + at[i] * w;
            out.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"scale-tick\"/>", x, x, 2, h + 5));
            out.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"tick\">%s</text>", x, h + 17, esc(labels[i])));
        }
        return out.append("</svg></div>").toString();
    }

    /** A horizontal bar of parts (values with colours and names) scaled so that {@code full} spans the width. */
    static String stackedBar(double full, double[] values, String[] colors, String[] names) {
        int w = 260, h = 16;
        StringBuilder out = new StringBuilder("<svg xmlns=\"").append(SVG_NS).append("\" class=\"bar\" viewBox=\"0 0 ").append(w).append(' ').append(h).append("\">");
        out.append("<rect class=\"bar-track\" x=\"0\" y=\"0\" width=\"").append(w).append("\" height=\"").append(h).append("\"/>");
        double x = 0;
        for (int i = 0; i < values.length; i++) {
            if (!Double.isFinite(values[i]) || values[i] <= 0 || full <= 0) continue;
            double width = values[i] / full * w;
            out.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"0\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>%s</title></rect>",
                    x, width, h, colors[i], esc(names[i] + ": " + seconds(values[i]))));
            x += width;
        }
        return out.append("</svg>").toString();
    }

    // ----- text

    /** Escapes text and attribute values for HTML and XML. */
    public static String esc(String s) {
        if (s == null) return "";
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&#39;");
                default -> {
                    if (c < 0x20 && c != '\n' && c != '\t') out.append(' ');
                    else out.append(c);
                }
            }
        }
        return out.toString();
    }

    /** A number short enough for a tick or a cell: 3 significant digits, k and M for large ones. */
    public static String num(double v) {
        if (Double.isNaN(v)) return "–";
        if (Double.isInfinite(v)) return v > 0 ? "∞" : "-∞";
        if (v == 0) return "0";
        double a = Math.abs(v);
        if (a >= 1e6) return trim(String.format(Locale.ROOT, "%.2f", v / 1e6)) + "M";
        if (a >= 1e4) return trim(String.format(Locale.ROOT, "%.1f", v / 1e3)) + "k";
        if (a >= 100) return String.format(Locale.ROOT, "%.0f", v);
        if (a < 1e-4) return String.format(Locale.ROOT, "%.1e", v);
        return new BigDecimal(v).round(new MathContext(3)).stripTrailingZeros().toPlainString();
    }

    private static String trim(String s) {
        return s.contains(".") ? s.replaceAll("0+$", "").replaceAll("\\.$", "") : s;
    }

    static String percent(double share) {
        return Double.isNaN(share) ? "–" : String.format(Locale.ROOT, "%.0f%%", share * 100);
    }

    static String bytes(double b) {
        if (Double.isNaN(b)) return "–";
        String[] units = {"B", "kB", "MB", "GB", "TB"};
        int u = 0;
        while (Math.abs(b) >= 1000 && u < units.length - 1) {
            b /= 1000;
            u++;
        }
        return (u == 0 ? String.format(Locale.ROOT, "%.0f", b) : num(b)) + " " + units[u];
    }

    static String seconds(double s) {
        if (Double.isNaN(s)) return "–";
        if (s < 1) return String.format(Locale.ROOT, "%.0f ms", s * 1000);
        return num(s) + " s";
    }

    /** A duration for people: "42 s", "3 min 20 s", "2 h 5 min". */
    static String duration(double s) {
        if (!Double.isFinite(s) || s < 0) return "–";
        long t = Math.round(s);
        if (t < 60) return t + " s";
        if (t < 3600) return (t / 60) + " min " + (t % 60) + " s";
        return (t / 3600) + " h " + (t % 3600 / 60) + " min";
    }
}
