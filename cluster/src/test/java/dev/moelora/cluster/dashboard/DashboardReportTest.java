package dev.moelora.cluster.dashboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.xpath.XPathConstants;
import javax.xml.xpath.XPathFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import org.xml.sax.InputSource;

/** moelora report: one self-contained file, well-formed, with routing.jsonl's numbers at the last step. */
class DashboardReportTest {
    private static final Set<String> NAMESPACES = Set.of("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml");

    @TempDir
    Path tmp;

    @Test
    void aRunsReportIsSelfContainedAndShowsTheLastStep() throws Exception {
        Path run = DashboardFixture.run(tmp.resolve("run"), 30);
        DashboardFixture.write(run.resolve("metrics.jsonl"), "not json\n");
        Path file = Report.write(run);
        assertEquals(run.resolve("report.html"), file);
        String html = Files.readString(file);
        assertSelfContained(html);
        Document doc = parse(html);

        NodeList maps = nodes(doc, "//*[@data-heatmap]");
        assertEquals(2, maps.getLength(), "a heatmap per module kind");
        Map<String, long[]> expected = DashboardFixture.routingAt(run, 30);
        Set<String> modules = new HashSet<>();
        for (int i = 0; i < maps.getLength(); i++) {
            Element map = (Element) maps.item(i);
            assertEquals("30", map.getAttribute("data-step"), "the last step");
            NodeList cells = nodes(map, ".//*[@data-tokens]");
            assertEquals(8, cells.getLength());
            for (int c = 0; c < cells.getLength(); c++) {
                Element cell = (Element) cells.item(c);
                String module = cell.getAttribute("data-module");
                assertEquals(expected.get(module)[Integer.parseInt(cell.getAttribute("data-expert"))], Long.parseLong(cell.getAttribute("data-tokens")), module);
                modules.add(module);
            }
        }
        assertEquals(new HashSet<>(DashboardFixture.MODULES), modules);
        assertEquals(1, nodes(doc, "//*[@data-alarm='dead-expert'][@data-module='" + DashboardFixture.DEAD_MODULE + "'][@data-expert='3']").getLength());
        assertEquals(2, nodes(doc, "//*[@data-node][@data-health='up']").getLength(), "both expert nodes, up");
        for (String chart : List.of("loss", "router-losses", "lr", "grad-norm", "tokens-per-s", "imbalance", "cv", "entropy", "effective-experts", "node-wait", "node-traffic")) {
            assertEquals(1, nodes(doc, "//*[@data-chart='" + chart + "']//polyline").getLength() > 0 ? 1 : 0, "a curve in chart " + chart);
        }
        assertTrue(html.contains("skipped lines"), "the malformed line is reported");
    }

    @Test
    void anExperimentsReportComparesItsRunsAndShowsEach() throws Exception {
        Path experiment = tmp.resolve("exp");
        DashboardFixture.run(experiment.resolve("lora"), 5);
        DashboardFixture.run(experiment.resolve("moelora"), 8);
        Files.writeString(experiment.resolve("comparison.json"), """
                [ {"run": "lora", "adapter": "lora", "trainable_parameters": 1000, "accuracy": {"sst2": 0.81, "rte": 0.60}, "average": 0.705, "tokens_per_s": 900, "wall_seconds": 30},
                  {"run": "moelora", "adapter": "moelora", "trainable_parameters": 1200, "accuracy": {"sst2": 0.84, "rte": 0.58}, "average": 0.71, "tokens_per_s": 700, "wall_seconds": 41} ]
                """);
        String html = Files.readString(Report.write(experiment));
        assertSelfContained(html);
        Document doc = parse(html);
        assertEquals(2, nodes(doc, "//table[@data-source='comparison.json']/tbody/tr").getLength());
        assertEquals("0.840", text(doc, "//tr[@data-run='moelora']/td[contains(@class,'best')][1]"), "the best sst2 accuracy is marked");
        assertEquals(2, nodes(doc, "//*[@data-chart='run-losses']//polyline").getLength(), "one loss curve per run");
        assertEquals(2, nodes(doc, "//main[@data-run]").getLength(), "each run's panels");
        assertEquals("8", ((Element) nodes(doc, "//main[@data-run='moelora']//*[@data-heatmap]").item(0)).getAttribute("data-step"));
    }

    /** No address outside the file: no http(s) URL but the SVG and XHTML namespaces, no script or link, no CSS url(). */
    static void assertSelfContained(String html) {
        Matcher m = Pattern.compile("https?://[^\"'\\s<>)]*").matcher(html);
        List<String> urls = new ArrayList<>();
        while (m.find()) if (!NAMESPACES.contains(m.group())) urls.add(m.group());
        assertEquals(List.of(), urls, "URLs in the report");
        assertFalse(Pattern.compile("<script", Pattern.CASE_INSENSITIVE).matcher(html).find(), "a script");
        assertFalse(Pattern.compile("<link", Pattern.CASE_INSENSITIVE).matcher(html).find(), "a link element");
        assertFalse(html.contains("url("), "a CSS url()");
        assertFalse(Pattern.compile("\\ssrc\\s*=", Pattern.CASE_INSENSITIVE).matcher(html).find(), "a src attribute");
        assertFalse(Pattern.compile("href\\s*=\\s*\"(?!#)", Pattern.CASE_INSENSITIVE).matcher(html).find(), "a link out of the file");
    }

    static Document parse(String html) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", false);
        f.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        return f.newDocumentBuilder().parse(new InputSource(new StringReader(html)));
    }

    private static NodeList nodes(Object context, String xpath) throws Exception {
        return (NodeList) XPathFactory.newInstance().newXPath().evaluate(xpath, context, XPathConstants.NODESET);
    }

    private static String text(Document doc, String xpath) throws Exception {
        return XPathFactory.newInstance().newXPath().evaluate(xpath, doc);
    }
}
