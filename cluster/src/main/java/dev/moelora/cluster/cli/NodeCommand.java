package dev.moelora.cluster.cli;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.cli.Jobs;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.runtime.ClusterNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "node", mixinStandardHelpOptions = true,
        description = {"Start one node of an expert-parallel MoELoRA run on a Pekko Cluster.",
                "router: runs the frozen trunk and the gates; expert: hosts experts on its device slots;",
                "coordinator: waits for runtime.routers routers and runtime.expert-nodes expert nodes, then trains",
                "(the same as `moelora train` with runtime.mode = cluster). Every node takes the same config;",
                "give each its own cluster.port and cluster.data-port with --set."})
public final class NodeCommand implements Callable<Integer> {
    @Option(names = "--role", required = true, description = "router | expert | coordinator")
    String role;

    @Option(names = {"-c", "--config"}, description = "HOCON run configuration (keys as in moelora-defaults.conf)")
    Path config;

    @Option(names = "--set", description = "override one key, e.g. --set cluster.port=2552 (repeatable)")
    List<String> overrides = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        List<String> all = new ArrayList<>(overrides);
        if (role.equals("coordinator")) {
            all.add("runtime.mode=cluster");
            Jobs.runWithDashboard(RunConfig.load(config, all), System.out, System.console() != null);
            return 0;
        }
        return ClusterNode.run(role, RunConfig.load(config, all), System.out);
    }
}
