package dev.moelora.cluster.cli;

import dev.moelora.cluster.dashboard.Dashboard;
import dev.moelora.cluster.experiment.Experiment;
import dev.moelora.cluster.experiment.TrainerActor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "experiment", mixinStandardHelpOptions = true,
        description = {"Run several adapters on the same data, seed and step budget, and print their comparison table.",
                "With no config, runs the built-in default experiment on the embedded default model and data."})
public final class ExperimentCommand implements Callable<Integer> {
    @Option(names = {"-c", "--config"}, description = "HOCON experiment: shared run settings plus experiment { name, runs = [ {name, ...overrides} ] }")
    Path config;

    @Option(names = "--set", description = "override a shared run setting for every run, e.g. --set train.steps=50 (repeatable)")
    List<String> overrides = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        Experiment.Plan plan = Experiment.load(config, overrides);
        System.out.printf("moelora experiment '%s': %d runs (%s) -> %s%n", plan.name(), plan.runs().size(),
                String.join(", ", plan.runs().stream().map(r -> r.name()).toList()), plan.dir());
        List<TrainerActor.Reply> outcomes;
        // one dashboard for the whole experiment (its runs side by side), with the runs' shared dashboard.* settings
        try (Dashboard dashboard = Dashboard.startIfEnabled(plan.runs().get(0).config(), plan.dir().toAbsolutePath(), System.out)) {
            outcomes = Experiment.run(plan.runs(), Jobs::run, System.out);
        }
        String table = Experiment.report(outcomes, plan.dir());
        System.out.println();
        System.out.print(table);
        System.out.println("comparison written to " + plan.dir().resolve("comparison.md") + " and comparison.json");
        return outcomes.stream().allMatch(o -> o instanceof TrainerActor.Trained) ? 0 : 1;
    }
}
