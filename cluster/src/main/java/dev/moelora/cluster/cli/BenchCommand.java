package dev.moelora.cluster.cli;

import dev.moelora.cluster.bench.DecoderBench;
import dev.moelora.cluster.bench.EncoderBench;
import dev.moelora.cluster.bench.FrameBench;
import dev.moelora.cluster.bench.RuntimeBench;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Measured, not asserted: runs one of the benchmarks in {@code dev.moelora.cluster.bench}; each prints the machine first. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Print the machine, ND4J SGEMM GFLOP/s and an adapter's training step tokens/s on MiniLM (or another benchmark).")
public final class BenchCommand implements Callable<Integer> {
    @Option(names = "--batch", defaultValue = "16", description = "sequences per step (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--seq", defaultValue = "64", description = "tokens per sequence (default: ${DEFAULT-VALUE})")
    int seq;

    @Option(names = "--adapter", defaultValue = "lora", description = "adapter.type to time: lora, tied-lora, moelora (default: ${DEFAULT-VALUE})")
    String adapter;

    @Option(names = "--set", description = "other adapter settings, e.g. --set adapter.rank=16 (repeatable)")
    List<String> overrides = new ArrayList<>();

    @Option(names = "--steps", defaultValue = "10", description = "timed steps after 3 warm-up steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--runtime", description = "instead: the MoELoRA step single-process vs the expert-parallel runtime in one JVM vs in 3 JVMs (uses --batch, --seq, --steps)")
    boolean runtime;

    @Option(names = "--decoder", description = "instead: the LoRA training step of a LLaMA-shaped decoder "
            + "(batch 8 x seq 128 unless --batch/--seq are given; uses --steps)")
    boolean decoder;

    @Option(names = "--frames", description = "instead: tensor-frame throughput over Aeron IPC and UDP 127.0.0.1 against raw Aeron")
    boolean frames;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        var parsed = spec.commandLine().getParseResult();
        if (decoder) {
            DecoderBench.run(System.out, parsed.hasMatchedOption("--batch") ? batch : DecoderBench.BATCH,
                    parsed.hasMatchedOption("--seq") ? seq : DecoderBench.SEQ, 3, steps);
        } else if (runtime) {
            RuntimeBench.run(System.out, steps + 2, batch, seq, Path.of("runs", "bench-runtime"));
        } else if (frames) {
            FrameBench.run(System.out, Duration.ofMillis(1500));
        } else {
            List<String> settings = new ArrayList<>(List.of("adapter.type=" + adapter));
            settings.addAll(overrides);
            EncoderBench.run(System.out, settings, batch, seq, steps);
        }
        return 0;
    }
}
