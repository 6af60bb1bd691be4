package dev.moelora.cluster.cli;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.cli.Jobs;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.runtime.ClusterNode;
import dev.moelora.cluster.runtime.ParentWatch;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "node", mixinStandardHelpOptions = true,
        description = {"Start one node of an expert-parallel MoELoRA run on a Pekko Cluster.",
                "router: runs the frozen trunk and the gates; expert: hosts experts on its device slots;",
                "coordinator: waits for runtime.routers routers and runtime.expert-nodes expert nodes, then trains",
                "(the same as `moelora train` with runtime.mode = cluster). Every node takes the same config;",
                "give each its own cluster.port and cluster.data-port with --set.",
                "With --parent-pid the node stops when that process ends (how the benchmarks and tests start nodes):",
                "a router or expert leaves the cluster as at the end of a run and exits 1, a coordinator stops as on SIGTERM;",
                "one still running " + ParentWatch.GRACE_SECONDS + " s after that (a coordinator: checkpoint.preemption-timeout + "
                        + ParentWatch.GRACE_SECONDS + " s) is halted with exit 1."})
public final class NodeCommand implements Callable<Integer> {
    @Option(names = "--role", required = true, description = "router | expert | coordinator")
    String role;

    @Option(names = {"-c", "--config"}, description = "HOCON run configuration (keys as in moelora-defaults.conf)")
    Path config;

    @Option(names = "--set", description = "override one key, e.g. --set cluster.port=2552 (repeatable)")
    List<String> overrides = new ArrayList<>();

    @Option(names = "--parent-pid", paramLabel = "PID",
            description = "stop when process PID ends (never outlive the process that started this node); it must be running at start")
    Long parentPid;

    @Override
    public Integer call() throws Exception {
        List<String> all = new ArrayList<>(overrides);
        if (role.equals("coordinator")) all.add("runtime.mode=cluster");
        RunConfig run = RunConfig.load(config, all);
        CompletableFuture<Void> parentGone = new CompletableFuture<>();
        if (parentPid != null) {
            if (role.equals("coordinator")) {
                // as SIGTERM: the run checkpoints at its next step boundary (a preemption) and the JVM exits
                Duration grace = run.duration("checkpoint.preemption-timeout").plus(ParentWatch.GRACE);
                ParentWatch.watch(parentPid, System.out, grace, () -> System.exit(1));
            } else {
                ParentWatch.watch(parentPid, System.out, ParentWatch.GRACE, () -> parentGone.complete(null));
            }
        }
        if (role.equals("coordinator")) {
            Jobs.runWithDashboard(run, System.out, System.console() != null);
            return 0;
        }
        return ClusterNode.run(role, run, System.out, parentGone);
    }
}
