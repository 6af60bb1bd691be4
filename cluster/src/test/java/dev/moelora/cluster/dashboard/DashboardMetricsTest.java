package dev.moelora.cluster.dashboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** /metrics: Prometheus's own checker accepts a scrape taken while the files grow, and the values are the records'. */
@Timeout(60)
class DashboardMetricsTest {
    private static final Path PROMTOOL = Path.of("/usr/bin/promtool");

    @TempDir
    Path tmp;
    Dashboard dashboard;

    @AfterEach
    void stop() {
        if (dashboard != null) dashboard.close();
    }

    @Test
    void promtoolAcceptsAScrapeTakenWhileTheRunGrows() throws Exception {
        assumeTrue(Files.isExecutable(PROMTOOL), "no " + PROMTOOL + " (apt-get install prometheus)");
        Path run = DashboardFixture.run(tmp.resolve("growing"), 10);
        dashboard = Dashboard.start(run, "127.0.0.1", 0, new PrintStream(new ByteArrayOutputStream()));
        DashboardServerTest.awaitStep(dashboard, "growing", 10);
        AtomicBoolean stop = new AtomicBoolean();
        Thread writer = new Thread(() -> {
            for (int s = 11; s <= 60 && !stop.get(); s++) {
                DashboardFixture.append(run, s, s);
                if (s == 20) DashboardFixture.event(run, "recovered", 20, DashboardFixture.NODE_B);
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "run-writer");
        writer.start();
        String scrape;
        try {
            DashboardServerTest.awaitStep(dashboard, "growing", 21);
            scrape = DashboardServerTest.get(dashboard.url() + "metrics");
        } finally {
            stop.set(true);
            writer.join(10_000);
        }

        Process promtool = new ProcessBuilder(PROMTOOL.toString(), "check", "metrics").redirectErrorStream(true).start();
        try (OutputStream in = promtool.getOutputStream()) {
            in.write(scrape.getBytes(StandardCharsets.UTF_8));
        }
        boolean exited = promtool.waitFor(20, TimeUnit.SECONDS);
        if (!exited) promtool.destroyForcibly();
        assertTrue(exited, "promtool did not finish within 20 s");
        String verdict = new String(promtool.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, promtool.exitValue(), "promtool check metrics:\n" + verdict + "\n--- scrape:\n" + scrape);

        for (String name : new String[] {"moelora_step", "moelora_loss", "moelora_task_loss", "moelora_aux_loss", "moelora_learning_rate",
                "moelora_grad_norm", "moelora_tokens_per_second", "moelora_routed_tokens", "moelora_load_imbalance_ratio", "moelora_load_cv_ratio",
                "moelora_gate_entropy_nats", "moelora_effective_experts", "moelora_node_sent_bytes_total", "moelora_node_received_bytes_total",
                "moelora_node_sent_frames_total", "moelora_node_received_frames_total", "moelora_node_dropped_frames_total",
                "moelora_node_step_seconds", "moelora_recoveries_total", "moelora_node_health"}) {
            assertTrue(scrape.contains("\n" + name + "{"), name + " missing from\n" + scrape);
        }
        assertEquals(0, value(scrape, "moelora_routed_tokens{expert=\"3\",module=\"" + DashboardFixture.DEAD_MODULE + "\",run=\"growing\"}"), "the dead expert");
        assertEquals(1, value(scrape, "moelora_recoveries_total{run=\"growing\"}"));
        assertEquals(1, value(scrape, "moelora_node_health{health=\"up\",node=\"" + DashboardFixture.NODE_B + "\",run=\"growing\"}"));
        assertEquals(0, value(scrape, "moelora_node_health{health=\"lost\",node=\"" + DashboardFixture.NODE_B + "\",run=\"growing\"}"));
        int step = (int) value(scrape, "moelora_step{run=\"growing\"}");
        assertTrue(step >= 21, "step " + step);
    }

    private static double value(String scrape, String series) {
        Matcher m = Pattern.compile("^" + Pattern.quote(series) + " (\\S+)$", Pattern.MULTILINE).matcher(scrape);
        assertTrue(m.find(), series + " not in\n" + scrape);
        return Double.parseDouble(m.group(1));
    }
}
