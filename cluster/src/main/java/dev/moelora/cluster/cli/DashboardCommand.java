package dev.moelora.cluster.cli;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.dashboard.Dashboard;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "dashboard", mixinStandardHelpOptions = true,
        description = {"Serve the dashboard of a run directory or an experiment directory, running or finished, until Ctrl-C:",
                "expert-load heatmaps, routing and loss curves, alarms, placement and node health, live from the run's files;",
                "Prometheus metrics on /metrics."})
public final class DashboardCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "RUN_DIR", description = "a run directory (runs/<name>) or an experiment directory (runs/<experiment>)")
    Path dir;

    @Option(names = "--host", description = "address to serve on (default: dashboard.host of moelora-defaults.conf, 127.0.0.1)")
    String host;

    @Option(names = "--port", description = "port (default: dashboard.port, 8470); the next free one when it is busy; 0 = any free port")
    Integer port;

    @Override
    public Integer call() throws Exception {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException(dir + " is not a directory");
        RunConfig defaults = RunConfig.load(null, List.of());
        Dashboard dashboard = Dashboard.start(dir, host != null ? host : defaults.string("dashboard.host"),
                port != null ? port : defaults.integer("dashboard.port"), System.out);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dashboard.close();
            stopped.countDown();
        }, "moelora-dashboard-stop"));
        System.out.println("serving " + dir.toAbsolutePath().normalize() + "; Ctrl-C stops");
        stopped.await();
        return 0;
    }
}
