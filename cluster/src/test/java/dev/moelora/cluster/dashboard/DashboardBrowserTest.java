package dev.moelora.cluster.dashboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.Keys;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.StaleElementReferenceException;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.logging.LoggingPreferences;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The page in a real browser (headless Chromium through the system's chromedriver, so Selenium
 * never downloads a driver): heatmap cells carry routing.jsonl's numbers at the step shown, the
 * step slider moves them, appended lines reach the page over server-sent events, a rewritten
 * placement.json changes a node's health, the dead expert raises its alarm, and the browser logs
 * no error. Skipped (with the reason) when chromium or chromedriver is missing.
 */
class DashboardBrowserTest {
    private static final Path CHROMIUM = Path.of("/usr/bin/chromium"), CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    private static final Duration WAIT = Duration.ofSeconds(15), LIVE = Duration.ofSeconds(8);

    @TempDir
    Path tmp;
    Path run;
    Dashboard dashboard;
    ChromeDriver browser;

    @BeforeEach
    void startBrowser() {
        assumeTrue(Files.isExecutable(CHROMIUM), "no " + CHROMIUM + " (apt-get install chromium)");
        assumeTrue(Files.isExecutable(CHROMEDRIVER), "no " + CHROMEDRIVER + " (apt-get install chromium-driver)");
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,2400");
        LoggingPreferences logs = new LoggingPreferences();
        logs.enable(LogType.BROWSER, Level.ALL);
        options.setCapability("goog:loggingPrefs", logs);
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort()
                .withTimeout(Duration.ofSeconds(30)).build();
        browser = new ChromeDriver(service, options);
        browser.manage().timeouts().pageLoadTimeout(Duration.ofSeconds(20)).scriptTimeout(Duration.ofSeconds(10));
        browser.manage().window().setSize(new Dimension(1440, 2400));
    }

    @AfterEach
    void stop() {
        if (browser != null) browser.quit();
        if (dashboard != null) dashboard.close();
    }

    @Test
    @Timeout(120)
    void thePageShowsTheRecordsAndFollowsTheRunLive() throws Exception {
        run = DashboardFixture.run(tmp.resolve("moelora-run"), 30);
        dashboard = Dashboard.start(run, "127.0.0.1", 0, new PrintStream(new ByteArrayOutputStream()));
        browser.get(dashboard.url());
        awaitHeatmapStep(30, WAIT);
        assertHeatmapsMatchRoutingFile();

        String alarm = await(WAIT, "[data-alarm='dead-expert'][data-module='"
                + DashboardFixture.DEAD_MODULE + "'][data-expert='" + DashboardFixture.DEAD_EXPERT + "']").getText();
        assertTrue(alarm.contains("no token for 25 steps"), alarm);
        assertEquals(1, browser.findElements(By.cssSelector("[data-alarm='dead-expert']")).size(), "only the one dead expert");

        // the slider: back to the first step, then forward to step 10
        WebElement slider = browser.findElement(By.id("step-slider"));
        slider.sendKeys(Keys.HOME);
        awaitHeatmapStep(1, WAIT);
        assertHeatmapsMatchRoutingFile();
        for (int i = 0; i < 9; i++) slider.sendKeys(Keys.ARROW_RIGHT);
        awaitHeatmapStep(10, WAIT);
        assertHeatmapsMatchRoutingFile();
        assertFalse(browser.findElement(By.id("follow")).isSelected(), "moving the slider back stops following the newest step");
        browser.findElement(By.id("follow")).click();
        awaitHeatmapStep(30, WAIT);

        // live: new lines in the files reach the open page through server-sent events
        DashboardFixture.append(run, 31, 33);
        awaitHeatmapStep(33, LIVE);
        assertHeatmapsMatchRoutingFile();
        await(LIVE, "[data-tile='step'][data-step='33']");

        // a node becomes unreachable: placement.json is rewritten
        await(WAIT, "[data-node='" + DashboardFixture.NODE_B + "'][data-health='up']");
        DashboardFixture.placement(run, DashboardFixture.NODE_B);
        await(LIVE, "[data-node='" + DashboardFixture.NODE_B + "'][data-health='unreachable']");
        await(WAIT, "[data-node='" + DashboardFixture.NODE_A + "'][data-health='up']");
        await(WAIT, "[data-alarm='node-unreachable'][data-node='" + DashboardFixture.NODE_B + "']");

        // the whole page in one picture: the window as tall as the document
        long height = (Long) browser.executeScript("return document.documentElement.scrollHeight;");
        browser.manage().window().setSize(new Dimension(1440, (int) Math.min(8000, height + 20)));
        Path shot = Path.of("target", "dashboard.png");
        Files.createDirectories(shot.getParent());
        File png = ((TakesScreenshot) browser).getScreenshotAs(OutputType.FILE);
        Files.copy(png.toPath(), shot, StandardCopyOption.REPLACE_EXISTING);

        assertNoConsoleErrors();
    }

    @Test
    @Timeout(60)
    void anExperimentShowsItsRunsSideBySideAndEachRunOnItsTab() throws Exception {
        Path experiment = tmp.resolve("exp");
        DashboardFixture.run(experiment.resolve("lora"), 6);
        run = DashboardFixture.run(experiment.resolve("moelora"), 9);
        Files.writeString(experiment.resolve("lora").resolve("eval.json"), "[{\"task\": \"sst2\", \"examples\": 100, \"correct\": 81, \"accuracy\": 0.81, \"chance\": 0.5}]");
        dashboard = Dashboard.start(experiment, "127.0.0.1", 0, new PrintStream(new ByteArrayOutputStream()));
        browser.get(dashboard.url());
        // while the experiment runs: each run's progress and the eval.json scores written so far
        await(WAIT, "table[data-source='eval.json'] tr[data-run='moelora']");
        assertEquals("0.810", await(WAIT, "tr[data-run='lora'] td.accuracy").getText());
        await(WAIT, "[data-chart='run-losses'] polyline");
        assertEquals(2, browser.findElements(By.cssSelector("[data-chart='run-losses'] polyline")).size(), "a loss curve per run");
        // the experiment ends: comparison.json replaces the live table
        Files.writeString(experiment.resolve("comparison.json"), "[{\"run\": \"lora\", \"adapter\": \"lora\", \"trainable_parameters\": 10, \"accuracy\": {\"sst2\": 0.81},"
                + " \"average\": 0.81, \"tokens_per_s\": 900, \"wall_seconds\": 3}, {\"run\": \"moelora\", \"error\": \"node lost\"}]");
        await(LIVE, "table[data-source='comparison.json'] tr[data-run='moelora'] td.warn");

        browser.findElement(By.cssSelector(".tab[data-tab='moelora']")).click();
        awaitHeatmapStep(9, WAIT);
        assertHeatmapsMatchRoutingFile();
        assertNoConsoleErrors();
    }

    private void assertNoConsoleErrors() {
        List<String> severe = new ArrayList<>();
        for (LogEntry e : browser.manage().logs().get(LogType.BROWSER)) if (e.getLevel().intValue() >= Level.SEVERE.intValue()) severe.add(e.getMessage());
        assertEquals(List.of(), severe, "the browser console logged errors");
    }

    /**
     * Every heatmap's cells hold routing.jsonl's tokens at the step that heatmap says it shows, for
     * every module of that step. Read in one script call: a snapshot, even if a refresh follows.
     */
    @SuppressWarnings("unchecked")
    private void assertHeatmapsMatchRoutingFile() {
        List<Map<String, Object>> maps = (List<Map<String, Object>>) browser.executeScript(
                "return Array.from(document.querySelectorAll('[data-heatmap]')).map(m => ({step: m.dataset.step, kind: m.dataset.heatmap,"
                        + " cells: Array.from(m.querySelectorAll('[data-tokens]')).map(c => [c.dataset.module, c.dataset.layer, c.dataset.expert, c.dataset.tokens])}));");
        assertEquals(2, maps.size(), "one heatmap per module kind");
        Set<String> modulesSeen = new HashSet<>();
        Set<String> steps = new HashSet<>();
        for (Map<String, Object> map : maps) {
            int shown = Integer.parseInt((String) map.get("step"));
            steps.add((String) map.get("step"));
            Map<String, long[]> expected = DashboardFixture.routingAt(run, shown);
            List<List<String>> cells = (List<List<String>>) map.get("cells");
            assertEquals(2 * DashboardFixture.EXPERTS, cells.size(), "2 layers x 4 experts in " + map.get("kind"));
            for (List<String> cell : cells) {
                String module = cell.get(0);
                int expert = Integer.parseInt(cell.get(2));
                assertEquals(expected.get(module)[expert], Long.parseLong(cell.get(3)), module + " expert " + expert + " at step " + shown);
                assertEquals(RunRecords.layerOf(module), Integer.parseInt(cell.get(1)), module);
                modulesSeen.add(module);
            }
        }
        assertEquals(1, steps.size(), "all heatmaps show the same step: " + steps);
        assertEquals(new HashSet<>(DashboardFixture.MODULES), modulesSeen, "every module of the step has its row");
    }

    private void awaitHeatmapStep(int step, Duration timeout) {
        new WebDriverWait(browser, timeout).ignoring(StaleElementReferenceException.class).withMessage(() -> "heatmaps at step " + step + "; shown: "
                        + browser.findElements(By.cssSelector("[data-heatmap]")).stream().map(e -> e.getAttribute("data-step")).toList())
                .until(b -> {
                    List<WebElement> maps = b.findElements(By.cssSelector("[data-heatmap]"));
                    return !maps.isEmpty() && maps.stream().allMatch(m -> String.valueOf(step).equals(m.getAttribute("data-step")));
                });
    }

    /** The first element of what the CSS selector finds, once it finds any; fails naming the selector after the timeout. */
    private WebElement await(Duration timeout, String css) {
        return new WebDriverWait(browser, timeout).ignoring(StaleElementReferenceException.class).withMessage(() -> "nothing matches " + css).until(b -> {
            List<WebElement> found = b.findElements(By.cssSelector(css));
            return found.isEmpty() ? null : found.get(0);
        });
    }
}
