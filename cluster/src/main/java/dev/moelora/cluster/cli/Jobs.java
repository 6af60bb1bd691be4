package dev.moelora.cluster.cli;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.dashboard.Dashboard;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.runtime.ExpertParallelJob;
import dev.moelora.cluster.single.EncoderJob;
import dev.moelora.cluster.single.InstructionJob;
import java.io.IOException;
import java.io.PrintStream;

/**
 * Which job a run configuration asks for: a decoder's instruction tuning (model.name = llama),
 * MoELoRA on the expert-parallel runtime (runtime.mode = local or cluster), or the single-process
 * encoder job. The one place that chooses; the jobs themselves never call each other.
 */
public final class Jobs {
    private Jobs() {}

    /**
     * Runs the job with the live dashboard on its run directory while it trains (dashboard.port;
     * 0 = none): what `train` and the cluster coordinator do. An empty run.name is given its
     * timestamp here, so the dashboard and the job agree on the directory.
     */
    public static JobResult runWithDashboard(RunConfig config, PrintStream out, boolean terminal) throws IOException {
        if (config.string("run.name").isEmpty()) config = config.with("run.name", RunDirectory.of(config).getFileName().toString());
        try (Dashboard dashboard = Dashboard.startIfEnabled(config, RunDirectory.of(config).toAbsolutePath(), out)) {
            return run(config, out, terminal);
        }
    }

    public static JobResult run(RunConfig config, PrintStream out, boolean terminal) throws IOException {
        String mode = config.string("runtime.mode");
        if (!mode.equals("single-process") && !mode.equals("local") && !mode.equals("cluster")) {
            throw new IllegalArgumentException("runtime.mode must be single-process, local or cluster; got '" + mode + "'");
        }
        boolean decoder = config.string("model.name").equals("llama");
        if (mode.equals("single-process")) return decoder ? InstructionJob.run(config, out, terminal) : EncoderJob.run(config, out, terminal);
        if (!config.string("adapter.type").equals("moelora")) {
            throw new IllegalArgumentException("runtime.mode = " + mode + " runs MoELoRA's experts in expert actors; adapter.type "
                    + config.string("adapter.type") + " has no experts and runs with runtime.mode = single-process");
        }
        return ExpertParallelJob.run(config, out, terminal);
    }
}
