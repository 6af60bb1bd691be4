package dev.moelora.cluster.cli;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.cluster.run.AdapterFamily;
import dev.moelora.cluster.run.RunConfig;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.onnx.OnnxWeights;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import dev.moelora.model.llama.LlamaBench;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Measured, not asserted: ND4J GEMM throughput and an adapter's training step on MiniLM, or on a LLaMA-shaped decoder. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Print ND4J SGEMM GFLOP/s and an adapter's training step tokens/s on MiniLM, with the machine they ran on.")
public final class BenchCommand implements Callable<Integer> {
    @Option(names = "--batch", defaultValue = "16", description = "sequences per step (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--seq", defaultValue = "64", description = "tokens per sequence (default: ${DEFAULT-VALUE})")
    int seq;

    @Option(names = "--adapter", defaultValue = "lora", description = "adapter.type to time: lora, tied-lora, moelora (default: ${DEFAULT-VALUE})")
    String adapter;

    @Option(names = "--set", description = "other adapter settings, e.g. --set adapter.rank=16 (repeatable)")
    List<String> overrides = new java.util.ArrayList<>();

    @Option(names = "--steps", defaultValue = "10", description = "timed steps after 3 warm-up steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--runtime", description = "instead: the MoELoRA step single-process vs the expert-parallel runtime in one JVM vs in 3 JVMs (uses --batch, --seq, --steps)")
    boolean runtime;

    @Option(names = "--decoder", description = "instead: the LoRA training step of a LLaMA-shaped decoder (dev.moelora.model.llama.LlamaBench; "
            + "batch 8 x seq 128 unless --batch/--seq are given; uses --steps)")
    boolean decoder;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--frames", description = "instead: tensor-frame throughput over Aeron IPC and UDP 127.0.0.1 against raw Aeron")
    boolean frames;

    @Override
    public Integer call() throws Exception {
        if (decoder) {
            var parsed = spec.commandLine().getParseResult();
            LlamaBench.run(System.out, parsed.hasMatchedOption("--batch") ? batch : LlamaBench.BATCH,
                    parsed.hasMatchedOption("--seq") ? seq : LlamaBench.SEQ, 3, steps);
            return 0;
        }
        System.out.println(machine());
        if (runtime) {
            dev.moelora.cluster.runtime.RuntimeBenchmark.run(System.out, steps + 2, batch, seq, Path.of("runs", "bench-runtime"));
            return 0;
        }
        if (frames) {
            dev.moelora.proto.frame.FrameBenchmark.main(new String[0]);
            return 0;
        }
        for (int n : new int[] {256, 1024, 2048}) {
            INDArray a = Nd4j.rand(DataType.FLOAT, n, n), b = Nd4j.rand(DataType.FLOAT, n, n), c = Nd4j.create(DataType.FLOAT, n, n);
            int reps = n <= 256 ? 50 : n <= 1024 ? 10 : 4;
            double[] t = new double[reps];
            Nd4j.gemm(a, b, c, false, false, 1, 0);
            for (int i = 0; i < reps; i++) {
                long s = System.nanoTime();
                Nd4j.gemm(a, b, c, false, false, 1, 0);
                t[i] = (System.nanoTime() - s) / 1e9;
            }
            System.out.printf(Locale.ROOT, "sgemm n=%d: %.1f GFLOP/s (median of %d)%n", n, 2.0 * n * n * n / median(t) / 1e9, reps);
        }

        BertEncoder encoder = new BertEncoder(BertConfig.miniLmL6(), OnnxWeights.miniLm().bertWeights());
        List<String> settings = new java.util.ArrayList<>(List.of("adapter.type=" + adapter));
        settings.addAll(overrides);
        Adapters adapters = AdapterFamily.apply(RunConfig.load(null, settings), encoder, 1);
        adapters.setTraining(true);
        List<Parameter> params = adapters.parameters();
        AdamW adam = AdamW.withDefaults(params, 0.0);
        SplittableRandom random = new SplittableRandom(1);
        int n = batch * seq;
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = i % seq == 0 ? 101 : i % seq == seq - 1 ? 102 : 1000 + random.nextInt(28000);
        float[] mask = new float[n];
        Arrays.fill(mask, 1f);
        TokenBatch tokens = new TokenBatch(batch, seq, ids, new int[n], mask);
        INDArray dHidden = Nd4j.rand(DataType.FLOAT, n, 384).subi(0.5).muli(1e-3);
        double[] t = new double[steps];
        for (int i = -3; i < steps; i++) {
            long s = System.nanoTime();
            for (Parameter p : params) p.zeroGrad();
            adapters.reseed(i);
            adapters.setRowMask(mask);
            encoder.forward(tokens);
            encoder.backward(dHidden);
            adapters.takeAuxiliaryLoss();
            adam.step(1e-4);
            if (i >= 0) t[i] = (System.nanoTime() - s) / 1e9;
        }
        double m = median(t);
        System.out.printf(Locale.ROOT, "%s step on all-MiniLM-L6-v2 (batch %d x seq %d = %d tokens; forward+backward+AdamW): "
                + "%.3f s/step median of %d, %.0f tokens/s%n", adapters.describe(), batch, seq, n, m, steps, n / m);
        return 0;
    }

    static double median(double[] t) {
        double[] s = t.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    static String machine() throws Exception {
        String cpu = "unknown CPU";
        Path info = Path.of("/proc/cpuinfo");
        if (Files.isReadable(info)) {
            cpu = Files.readAllLines(info).stream().filter(l -> l.startsWith("model name")).findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(cpu);
        }
        return String.format(Locale.ROOT, "machine: %s, %d cores, %s %s, JDK %s (%s), ND4J backend %s",
                cpu, Runtime.getRuntime().availableProcessors(), System.getProperty("os.name"), System.getProperty("os.arch"),
                System.getProperty("java.version"), System.getProperty("java.vendor"), Nd4j.getBackend().getClass().getSimpleName());
    }
}
