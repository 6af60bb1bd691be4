package dev.moelora.cluster.dashboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The SVG charts' arithmetic and text: ticks, labels, escaping, the colour scale. */
class DashboardChartsTest {
    @Test
    void ticksCoverTheRangeWithRoundSteps() {
        double[] t = Charts.ticks(0.13, 0.97, 5, false);
        assertTrue(t[0] <= 0.13 && t[t.length - 1] >= 0.97, Arrays.toString(t));
        assertEquals(0.2, t[1] - t[0], 1e-12);
        double[] steps = Charts.ticks(1, 3, 6, true);
        for (double s : steps) assertEquals(Math.rint(s), s, "integer ticks for steps: " + Arrays.toString(steps));
    }

    @Test
    void neighbouringTickLabelsAlwaysDiffer() {
        double[] bytes = Charts.ticks(1_900_000, 1_900_033, 5, false);
        String[] labels = Charts.tickLabels(bytes);
        assertEquals(labels.length, new HashSet<>(Arrays.asList(labels)).size(), Arrays.toString(labels));
        assertEquals(List.of("0", "0.5", "1"), Arrays.asList(Charts.tickLabels(new double[] {0, 0.5, 1})));
        assertEquals("2.0e-05", Charts.num(2e-5));
        assertEquals("0.002", Charts.num(2e-3));
        assertEquals("12.3k", Charts.num(12_345));
    }

    @Test
    void markupIsEscapedAndWellFormed() throws Exception {
        String svg = Charts.lineChart("x", "a <b> & \"c\"", "step", "y", List.of(Charts.Series.line("s & t", "#000", new double[] {1, 2}, new double[] {3, Double.NaN})), List.of());
        assertTrue(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        DashboardReportTest.parse("<!DOCTYPE html><html>" + svg + "</html>");
    }

    @Test
    void aLogTwoAxisTicksEveryPowerOfTwoAndRefusesNonPositiveValues() throws Exception {
        String svg = Charts.plot("t", "experts", "s", List.of(Charts.Series.line("a", "#000", new double[] {3, 20}, new double[] {1, 2})), Charts.XAxis.LOG2);
        var root = DashboardReportTest.parse("<!DOCTYPE html><html>" + svg + "</html>");
        java.util.List<String> ticks = new java.util.ArrayList<>();
        var texts = root.getElementsByTagName("text");
        for (int i = 0; i < texts.getLength(); i++) {
            var t = (org.w3c.dom.Element) texts.item(i);
            if (t.getAttribute("text-anchor").equals("middle") && t.getAttribute("class").equals("tick")) ticks.add(t.getTextContent());
        }
        assertEquals(List.of("2", "4", "8", "16", "32"), ticks, "3 to 20 widens to 2 to 32");
        var zero = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> Charts.plot("t", "x", "y",
                List.of(Charts.Series.line("a", "#000", new double[] {0, 2}, new double[] {1, 2})), Charts.XAxis.LOG2));
        assertEquals("a log-2 axis needs positive x, got 0 in 't'", zero.getMessage());
    }

    @Test
    void theColourScaleRunsFromDarkToLight() {
        assertEquals("#440154", Charts.viridis(0));
        assertEquals("#fde725", Charts.viridis(1));
        assertEquals("#fde725", Charts.viridis(7), "clamped");
    }
}
