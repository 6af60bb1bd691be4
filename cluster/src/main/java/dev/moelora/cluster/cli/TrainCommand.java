package dev.moelora.cluster.cli;

import dev.moelora.cluster.config.RunConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Fine-tune the base model with an adapter and evaluate it.",
                "With no config, trains LoRA on all-MiniLM-L6-v2 over the built-in generated task suite."})
public final class TrainCommand implements Callable<Integer> {
    @Option(names = {"-c", "--config"}, description = "HOCON run configuration (keys as in moelora-defaults.conf)")
    Path config;

    @Option(names = "--set", description = "override one key, e.g. --set train.steps=50 (repeatable)")
    List<String> overrides = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        Jobs.runWithDashboard(RunConfig.load(config, overrides), System.out, System.console() != null);
        return 0;
    }
}
