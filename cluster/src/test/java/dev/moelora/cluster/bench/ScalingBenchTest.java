package dev.moelora.cluster.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.cluster.bench.ScalingBench.Runtime;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/** The scaling sweep's CSV and SVG from given rows (no training): columns, one line per runtime and panel, log-2 axes, validation. */
class ScalingBenchTest {
    static final List<Runtime> ALL = List.of(Runtime.SINGLE_PROCESS, Runtime.COLOCATED, Runtime.DISTRIBUTED);

    /** Rows of an experts axis (E 4, 8, 16, 32) and a tokens axis (three batches): seconds grow with the value. */
    static List<ScalingBench.Row> rows() {
        List<ScalingBench.Row> rows = new ArrayList<>();
        int[] experts = {4, 8, 16, 32};
        for (int i = 0; i < experts.length; i++) {
            rows.add(row(new ScalingBench.Point("experts", experts[i], 2, 1024, 40, 1), 1010, 0.5 + i, 0.6 + i, 1.5 + i));
        }
        int[] tokens = {512, 1024, 2048};
        double[] counted = {497, 1010, 2061};
        for (int i = 0; i < tokens.length; i++) {
            rows.add(row(new ScalingBench.Point("tokens", 8, 2, tokens[i], tokens[i] / 52, 2), counted[i], 0.3 * (i + 1), 0.4 * (i + 1), 1.2 * (i + 1)));
        }
        return rows;
    }

    private static ScalingBench.Row row(ScalingBench.Point p, double tokens, double single, double colocated, double distributed) {
        Map<Runtime, Double> s = new EnumMap<>(Runtime.class);
        s.put(Runtime.SINGLE_PROCESS, single);
        s.put(Runtime.COLOCATED, colocated);
        s.put(Runtime.DISTRIBUTED, distributed);
        return new ScalingBench.Row(p, tokens, s);
    }

    static ScalingBench.Options options(List<String> axes, List<Runtime> runtimes) {
        return new ScalingBench.Options(axes, Map.of("experts", List.of(4, 8, 16, 32), "nodes", List.of(1, 2), "tokens", List.of(512, 1024, 2048)),
                new ScalingBench.Base(8, 2, 1024), runtimes, 2, 4, 2048);
    }

    @Test
    void csvHasOneLinePerPointWithTheCountedTokensAndEveryRuntime() {
        String[] lines = ScalingBench.csv(rows(), ALL).split("\n");
        assertEquals("axis,value,experts,expert_nodes,micro_batches,batch,tokens_per_step,single_process_s_per_step,colocated_s_per_step,distributed_s_per_step,"
                + "colocated_over_single_process,distributed_over_single_process,single_process_tokens_per_s,colocated_tokens_per_s,"
                + "distributed_tokens_per_s", lines[0]);
        assertEquals(1 + 7, lines.length);
        // E 16: third experts row; 1010 tokens, 2.5 / 2.6 / 3.5 s; ratios 2.6/2.5 and 3.5/2.5; tokens/s 1010 / s.
        assertEquals("experts,16,16,2,1,40,1010.0,2.5000,2.6000,3.5000,1.040,1.400,404.0,388.5,288.6", lines[3]);
        assertEquals("tokens,2048,8,2,2,39,2061.0,0.9000,1.2000,3.6000,1.333,4.000,2290.0,1717.5,572.5", lines[7]);
    }

    @Test
    void csvWithoutSingleProcessHasNoRatios() {
        String head = ScalingBench.csv(rows(), List.of(Runtime.DISTRIBUTED)).split("\n")[0];
        assertEquals("axis,value,experts,expert_nodes,micro_batches,batch,tokens_per_step,distributed_s_per_step,distributed_tokens_per_s", head);
    }

    @Test
    void svgHasAPanelPerAxisAndALinePerRuntimeOnLogTwoAxes() throws Exception {
        Document doc = parse(ScalingBench.svg(rows(), options(List.of("experts", "tokens"), ALL)));
        Element root = doc.getDocumentElement();
        assertEquals("svg", root.getLocalName());
        NodeList panels = root.getElementsByTagNameNS("*", "svg");
        assertEquals(2 * 2, panels.getLength(), "a placed <svg> around each axis's plot <svg>");
        NodeList lines = root.getElementsByTagNameNS("*", "polyline");
        assertEquals(2 * 3, lines.getLength(), "a line per runtime in each of the two panels");
        for (int i = 0; i < lines.getLength(); i++) {
            String[] points = ((Element) lines.item(i)).getAttribute("points").trim().split(" ");
            assertEquals(i < 3 ? 4 : 3, points.length, "points of line " + i);
        }
        // E 4, 8, 16, 32 on a log-2 axis: equally spaced.
        String[] experts = ((Element) lines.item(0)).getAttribute("points").trim().split(" ");
        double[] x = new double[experts.length];
        for (int i = 0; i < x.length; i++) x[i] = Double.parseDouble(experts[i].split(",")[0]);
        assertEquals(x[1] - x[0], x[2] - x[1], 0.15);
        assertEquals(x[1] - x[0], x[3] - x[2], 0.15);
        assertTrue(x[1] - x[0] > 50, "the points spread over the panel: " + String.join(" ", experts));
        List<String> texts = texts(root);
        for (String label : List.of("experts (E)", "real tokens per step", "s / step", "single-process", "colocated", "distributed",
                "4", "8", "16", "32", "512", "1024", "2048", "Step time vs experts per module", "Step time vs tokens per step")) {
            assertTrue(texts.contains(label), "no text '" + label + "' in " + texts);
        }
    }

    @Test
    void theTokensPanelPlacesPointsAtTheCountedTokens() throws Exception {
        Document doc = parse(ScalingBench.svg(rows(), options(List.of("tokens"), List.of(Runtime.SINGLE_PROCESS))));
        NodeList lines = doc.getDocumentElement().getElementsByTagNameNS("*", "polyline");
        assertEquals(1, lines.getLength());
        String[] p = ((Element) lines.item(0)).getAttribute("points").trim().split(" ");
        double x0 = Double.parseDouble(p[0].split(",")[0]), x1 = Double.parseDouble(p[1].split(",")[0]);
        double x2 = Double.parseDouble(p[2].split(",")[0]);
        // 497, 1010, 2061 counted tokens: log2 distances 1.023 and 1.029, not the targets' 1 and 1 — nor linear (513 and 1051).
        double unit = (x2 - x0) / (Math.log(2061.0 / 497) / Math.log(2));
        assertEquals(Math.log(1010.0 / 497) / Math.log(2) * unit, x1 - x0, 0.2);
    }

    @Test
    void largeStepsRunAsMicroBatchesOfAtMostTheGivenTokens() {
        var options = new ScalingBench.Options(List.of("tokens", "experts"), Map.of("tokens", List.of(512, 2048, 2049, 8192), "experts", List.of(16)),
                new ScalingBench.Base(8, 2, 1024), ALL, 2, 4, 2048);
        // 25.9 real tokens per example: 512 -> 19.8 examples; 2048 -> 79.1; 2049 -> 2 x 39.6; 8192 -> 4 x 79.1; 1024 -> 39.5.
        List<String> points = ScalingBench.points(options, new ScalingBench.Sizing("", 25.9, 16)).stream()
                .map(p -> p.axis() + " E" + p.experts() + " n" + p.nodes() + " " + p.microBatches() + "x" + p.batch()).toList();
        assertEquals(List.of("tokens E8 n2 1x20", "tokens E8 n2 1x79", "tokens E8 n2 2x40", "tokens E8 n2 4x79", "experts E16 n2 1x40"), points);
    }

    @Test
    void pointsThatCannotRunAreRefusedByName() {
        var tooManyNodes = assertThrows(IllegalArgumentException.class, () -> new ScalingBench.Options(List.of("nodes"),
                Map.of("nodes", List.of(1, 8)), new ScalingBench.Base(4, 2, 512), ALL, 2, 4, 2048));
        assertEquals("expert nodes must be between 1 and the experts (4), got 8", tooManyNodes.getMessage());
        var axis = assertThrows(IllegalArgumentException.class, () -> new ScalingBench.Options(List.of("layers"),
                Map.of("layers", List.of(1)), new ScalingBench.Base(4, 2, 512), ALL, 2, 4, 2048));
        assertEquals("an axis is one of [experts, nodes, tokens]; got 'layers'", axis.getMessage());
        assertEquals("a runtime is single-process, colocated or distributed; got 'gpu'",
                assertThrows(IllegalArgumentException.class, () -> Runtime.of("gpu")).getMessage());
    }

    static Document parse(String svg) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        return f.newDocumentBuilder().parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
    }

    static List<String> texts(Element root) {
        List<String> out = new ArrayList<>();
        NodeList t = root.getElementsByTagNameNS("*", "text");
        for (int i = 0; i < t.getLength(); i++) out.add(t.item(i).getTextContent());
        return out;
    }
}
