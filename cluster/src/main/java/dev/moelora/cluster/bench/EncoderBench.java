package dev.moelora.cluster.bench;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.setup.AdapterFamily;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.onnx.OnnxWeights;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Measured, not asserted: ND4J's SGEMM rate on this machine, then one adapter family's training
 * step on all-MiniLM-L6-v2 (forward, backward from a fixed random gradient, AdamW) on random
 * tokens. Prints the machine first and medians after three warm-up steps.
 */
public final class EncoderBench {
    private EncoderBench() {}

    /**
     * @param settings {@code key=value} run settings for the adapter, at least {@code adapter.type=...}
     */
    public static void run(PrintStream out, List<String> settings, int batch, int seq, int steps) throws IOException {
        out.println(Machine.describe());
        for (int n : new int[] {256, 1024, 2048}) out.printf(Locale.ROOT, "sgemm n=%d: %.1f GFLOP/s%n", n, sgemm(n));

        BertEncoder encoder = new BertEncoder(BertConfig.miniLmL6(), OnnxWeights.miniLm().bertWeights());
        Adapters adapters = AdapterFamily.apply(RunConfig.load(null, new ArrayList<>(settings)), encoder, 1);
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
        double m = Machine.median(t);
        out.printf(Locale.ROOT, "%s step on all-MiniLM-L6-v2 (batch %d x seq %d = %d tokens; forward+backward+AdamW): "
                + "%.3f s/step median of %d, %.0f tokens/s%n", adapters.describe(), batch, seq, n, m, steps, n / m);
    }

    /** GFLOP/s of an (n, n) x (n, n) float product, median of a few repetitions after one warm-up. */
    static double sgemm(int n) {
        INDArray a = Nd4j.rand(DataType.FLOAT, n, n), b = Nd4j.rand(DataType.FLOAT, n, n), c = Nd4j.create(DataType.FLOAT, n, n);
        int reps = n <= 256 ? 50 : n <= 1024 ? 10 : 4;
        double[] t = new double[reps];
        Nd4j.gemm(a, b, c, false, false, 1, 0);
        for (int i = 0; i < reps; i++) {
            long s = System.nanoTime();
            Nd4j.gemm(a, b, c, false, false, 1, 0);
            t[i] = (System.nanoTime() - s) / 1e9;
        }
        return 2.0 * n * n * n / Machine.median(t) / 1e9;
    }
}
