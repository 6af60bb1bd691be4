package dev.moelora.cluster.cli;

import dev.moelora.cluster.bench.DecoderBench;
import dev.moelora.cluster.bench.EncoderBench;
import dev.moelora.cluster.bench.FrameBench;
import dev.moelora.cluster.bench.RuntimeBench;
import dev.moelora.cluster.bench.ScalingBench;
import dev.moelora.cluster.bench.StepBench;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Measured, not asserted: runs one of the benchmarks in {@code dev.moelora.cluster.bench}; each prints the machine first. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Print the machine, ND4J SGEMM GFLOP/s and an adapter's training step on MiniLM or (--decoder) a LLaMA-shaped decoder: "
                + "tokens/s, FLOPs, fraction of SGEMM, heap bytes and the forward/backward/optimizer split, one key=value line per figure "
                + "(or another benchmark).")
public final class BenchCommand implements Callable<Integer> {
    /** The families --adapter accepts. */
    public static final List<String> ADAPTERS = List.of("lora", "tied-lora", "moelora");

    @Option(names = "--batch", defaultValue = "16", description = "sequences per step (default: ${DEFAULT-VALUE}; the decoder: 8)")
    int batch;

    @Option(names = "--seq", defaultValue = "64", description = "tokens per sequence (default: ${DEFAULT-VALUE}; the decoder: 128)")
    int seq;

    @Option(names = "--adapter", defaultValue = "lora", description = "the family to time: lora, tied-lora, moelora (default: ${DEFAULT-VALUE})")
    String adapter;

    @Option(names = "--set", description = "other adapter settings, e.g. --set adapter.rank=16 (repeatable)")
    List<String> overrides = new ArrayList<>();

    @Option(names = "--steps", defaultValue = "10", description = "timed steps after the warm-up (default: ${DEFAULT-VALUE}; --scaling: 4)")
    int steps;

    @Option(names = "--warmup", defaultValue = "3", description = "untimed warm-up steps (default: ${DEFAULT-VALUE}; --scaling: 2; not used by --runtime, --frames)")
    int warmup;

    @Option(names = "--profile", description = "also print ND4J's OpProfiler table (time per operation type) of one untimed step")
    boolean profile;

    @Option(names = "--runtime", description = "instead: the MoELoRA step single-process vs the expert-parallel runtime in one JVM vs in 3 JVMs (uses --batch, --seq, --steps)")
    boolean runtime;

    @Option(names = "--decoder", description = "the adapter's training step on a random LLaMA-shaped decoder (d 256, 4 layers, 8 heads, FFN 688, "
            + "vocabulary 4096; rank 8 on q, k, v, o; Tied-LoRA tl6; MoELoRA 4 experts, top-2, rank 2) instead of MiniLM; "
            + "batch 8 x seq 128 unless --batch/--seq are given")
    boolean decoder;

    @Option(names = "--frames", description = "instead: tensor-frame throughput over Aeron IPC and UDP 127.0.0.1 against raw Aeron")
    boolean frames;

    @Option(names = "--scaling", description = "instead: the MoELoRA step time single-process, colocated and distributed (router JVM + N expert JVMs) "
            + "as experts, expert nodes and real tokens per step grow, one axis at a time around --scaling-base; a table, scaling.csv and "
            + "scaling.svg in --scaling-dir (uses --steps, --warmup)")
    boolean scaling;

    @Option(names = "--scaling-axes", split = ",", defaultValue = "experts,nodes,tokens", description = "the axes to sweep (default: ${DEFAULT-VALUE})")
    List<String> scalingAxes;

    @Option(names = "--scaling-experts", split = ",", defaultValue = "4,8,16,32", description = "experts per module on the experts axis (default: ${DEFAULT-VALUE})")
    List<Integer> scalingExperts;

    @Option(names = "--scaling-nodes", split = ",", defaultValue = "1,2,4", description = "expert nodes on the nodes axis (default: ${DEFAULT-VALUE})")
    List<Integer> scalingNodes;

    @Option(names = "--scaling-tokens", split = ",", defaultValue = "512,1024,2048,4096,8192",
            description = "target real tokens per step on the tokens axis (default: ${DEFAULT-VALUE})")
    List<Integer> scalingTokens;

    @Option(names = "--scaling-base", split = ",", defaultValue = "experts=8,nodes=2,tokens=1024",
            description = "the point the axes are swept around; any of experts=, nodes=, tokens= (default: ${DEFAULT-VALUE})")
    Map<String, Integer> scalingBase;

    @Option(names = "--scaling-runtimes", split = ",", defaultValue = "single-process,colocated,distributed",
            description = "the runtimes timed at every point (default: ${DEFAULT-VALUE})")
    List<String> scalingRuntimes;

    @Option(names = "--scaling-micro-tokens", defaultValue = "2048",
            description = "a step of more tokens runs as micro-batches of at most this many (train.grad-accum), which bounds the memory "
                    + "a JVM reserves (default: ${DEFAULT-VALUE})")
    int scalingMicroTokens;

    @Option(names = "--scaling-dir", defaultValue = "runs/bench-scaling",
            description = "the sweep's work directory, emptied first: runs, node logs, scaling.csv, scaling.svg (default: ${DEFAULT-VALUE})")
    Path scalingDir;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        var parsed = spec.commandLine().getParseResult();
        if ((decoder ? 1 : 0) + (runtime ? 1 : 0) + (scaling ? 1 : 0) + (frames ? 1 : 0) > 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--decoder, --runtime, --scaling and --frames are separate benchmarks: give one");
        }
        if (!ADAPTERS.contains(adapter)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--adapter must be one of " + String.join(", ", ADAPTERS) + "; got '" + adapter + "'");
        }
        if (steps < 1) throw new CommandLine.ParameterException(spec.commandLine(), "--steps must be >= 1, got " + steps);
        if (warmup < 0) throw new CommandLine.ParameterException(spec.commandLine(), "--warmup must be >= 0, got " + warmup);
        if (batch < 1 || seq < 2) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--batch must be >= 1 and --seq >= 2, got " + batch + " and " + seq);
        }
        StepBench.Options options = new StepBench.Options(warmup, steps, profile);
        if (decoder) {
            List<String> settings = DecoderBench.settings(adapter);
            settings.addAll(overrides);
            DecoderBench.run(System.out, settings, parsed.hasMatchedOption("--batch") ? batch : DecoderBench.BATCH,
                    parsed.hasMatchedOption("--seq") ? seq : DecoderBench.SEQ, options);
        } else if (runtime) {
            RuntimeBench.run(System.out, steps + 2, batch, seq, Path.of("runs", "bench-runtime"));
        } else if (scaling) {
            ScalingBench.run(System.out, scalingOptions(parsed), scalingDir);
        } else if (frames) {
            FrameBench.run(System.out, Duration.ofMillis(1500));
        } else {
            List<String> settings = new ArrayList<>(List.of("adapter.type=" + adapter));
            settings.addAll(overrides);
            EncoderBench.run(System.out, settings, batch, seq, options);
        }
        return 0;
    }

    private ScalingBench.Options scalingOptions(CommandLine.ParseResult parsed) {
        Map<String, Integer> base = new LinkedHashMap<>(Map.of("experts", 8, "nodes", 2, "tokens", 1024));
        for (var e : scalingBase.entrySet()) {
            if (!base.containsKey(e.getKey())) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--scaling-base takes experts=, nodes= and tokens=; got '" + e.getKey() + "'");
            }
            base.put(e.getKey(), e.getValue());
        }
        List<ScalingBench.Runtime> runtimes = new ArrayList<>();
        try {
            for (String r : scalingRuntimes) runtimes.add(ScalingBench.Runtime.of(r));
            return new ScalingBench.Options(scalingAxes, Map.of("experts", scalingExperts, "nodes", scalingNodes, "tokens", scalingTokens),
                    new ScalingBench.Base(base.get("experts"), base.get("nodes"), base.get("tokens")), runtimes,
                    parsed.hasMatchedOption("--warmup") ? warmup : 2, parsed.hasMatchedOption("--steps") ? steps : 4, scalingMicroTokens);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--scaling: " + e.getMessage());
        }
    }
}
