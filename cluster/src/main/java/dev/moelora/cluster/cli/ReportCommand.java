package dev.moelora.cluster.cli;

import dev.moelora.cluster.dashboard.Report;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = {"Write RUN_DIR/report.html: the dashboard's plots at the final state of a run or experiment directory,",
                "one self-contained file (inline SVG and CSS, no script, nothing fetched from anywhere)."})
public final class ReportCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "RUN_DIR", description = "a run directory (runs/<name>) or an experiment directory (runs/<experiment>)")
    Path dir;

    @Override
    public Integer call() throws Exception {
        Path report = Report.write(dir);
        System.out.println("report written to " + report);
        return 0;
    }
}
