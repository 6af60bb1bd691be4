package dev.moelora.cluster;

import dev.moelora.cluster.cli.BenchCommand;
import dev.moelora.cluster.cli.ChaosCommand;
import dev.moelora.cluster.cli.DashboardCommand;
import dev.moelora.cluster.cli.EvaluateCommand;
import dev.moelora.cluster.cli.ExperimentCommand;
import dev.moelora.cluster.cli.ForwardCommand;
import dev.moelora.cluster.cli.GenerateCommand;
import dev.moelora.cluster.cli.MergeCommand;
import dev.moelora.cluster.cli.NodeCommand;
import dev.moelora.cluster.cli.ReportCommand;
import dev.moelora.cluster.cli.TrainCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code moelora} command line. */
@Command(name = "moelora", mixinStandardHelpOptions = true, version = "moelora 0.1.0",
        description = "Parameter-efficient fine-tuning of transformers: LoRA, Tied-LoRA and MoELoRA, single-process or expert-parallel.",
        subcommands = {TrainCommand.class, NodeCommand.class, ExperimentCommand.class, ForwardCommand.class, GenerateCommand.class, EvaluateCommand.class,
                MergeCommand.class, BenchCommand.class,
                DashboardCommand.class, ReportCommand.class, ChaosCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** The command line with its error handling: a bad config, data or model file exits 2 with its message. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        // a bad config or data file is the user's to fix: print its message, not a stack trace
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof IllegalArgumentException || e instanceof java.io.IOException || e instanceof java.io.UncheckedIOException) {
                commandLine.getErr().println("moelora: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        return cli;
    }
}
