package dev.moelora.cluster.cli;

import dev.moelora.cluster.chaos.ChaosRun;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The long chaos run (the suite runs a short one): kills random node JVMs during a MoELoRA run and compares the result with the uninterrupted run. */
@Command(name = "chaos", mixinStandardHelpOptions = true,
        description = {"Run MoELoRA on a router JVM and expert JVMs of this machine while random nodes are killed (kill -9) at random steps",
                "and replaced; then the same run uninterrupted; print whether losses and the final adapter are bit-identical (exit 0) or not (1)."})
public final class ChaosCommand implements Callable<Integer> {
    @Option(names = "--steps", defaultValue = "300", description = "training steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--expert-nodes", defaultValue = "3", description = "expert JVMs (default: ${DEFAULT-VALUE})")
    int expertNodes;

    @Option(names = "--kills", defaultValue = "10", description = "kills spread over the run (default: ${DEFAULT-VALUE})")
    int kills;

    @Option(names = "--seed", defaultValue = "1", description = "seed of the kill steps and victims (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--dir", defaultValue = "runs/chaos", description = "where the runs and node logs go (default: ${DEFAULT-VALUE})")
    Path dir;

    @Override
    public Integer call() throws Exception {
        return ChaosRun.run(dir.toAbsolutePath(), steps, expertNodes, kills, seed, System.out).identical() ? 0 : 1;
    }
}
