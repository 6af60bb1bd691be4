package dev.moelora.cluster.bench;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.setup.AdapterFamily;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.onnx.OnnxWeights;
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
 * Measured, not asserted: one adapter family's training step on all-MiniLM-L6-v2 (forward, backward from a fixed random gradient on the last
 * hidden state, clipping, AdamW) on random tokens, timed by {@link StepBench}, then ND4J's SGEMM rate on
 * square matrices (the figures BENCHMARKS.md's first table records).
 */
public final class EncoderBench {
    private EncoderBench() {}

    /**
     * @param settings {@code key=value} run settings for the adapter, at least {@code adapter.type=...}
     */
    public static void run(PrintStream out, List<String> settings, int batch, int seq, StepBench.Options options) throws IOException {
        if (batch < 1 || seq < 2) throw new IllegalArgumentException("the encoder bench needs --batch >= 1 and --seq >= 2, got " + batch + " and " + seq);
        RunConfig config = RunConfig.load(null, new ArrayList<>(settings));
        BertConfig bert = BertConfig.miniLmL6();
        BertEncoder encoder = new BertEncoder(bert, OnnxWeights.miniLm().bertWeights());
        Adapters adapters = AdapterFamily.apply(config, encoder, 1);
        SplittableRandom random = new SplittableRandom(1);
        int n = batch * seq;
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = i % seq == 0 ? 101 : i % seq == seq - 1 ? 102 : 1000 + random.nextInt(28000);
        float[] mask = new float[n];
        Arrays.fill(mask, 1f);
        TokenBatch tokens = new TokenBatch(batch, seq, ids, new int[n], mask);
        INDArray dHidden = Nd4j.rand(DataType.FLOAT, n, bert.hidden()).subi(0.5).muli(1e-3);
        StepBench.Step step = new StepBench.Step() {
            @Override
            public double forward() {
                adapters.setRowMask(mask);
                encoder.forward(tokens);
                return 0;
            }

            @Override
            public void backward() {
                encoder.backward(dHidden);
            }
        };
        StepFlops.Flops flops = StepFlops.encoder(bert, batch, seq)
                .plus(StepFlops.adapter(StepFlops.Adapter.of(config), StepFlops.adapted(encoder.linears()), n));
        String title = String.format(Locale.ROOT, "encoder %s: %s; all-MiniLM-L6-v2 C=%d L=%d H=%d F=%d float32, backward from a fixed gradient; batch %d x seq %d",
                config.string("adapter.type"), adapters.describe(), bert.hidden(), bert.layers(), bert.heads(), bert.intermediate(), batch, seq);
        StepBench.run(out, new StepBench.Setup(title, adapters, step, flops, n, new int[] {n, bert.hidden(), bert.intermediate()},
                "the feed-forward's input projection", 1e-4), options);
        for (int s : new int[] {256, 1024, 2048}) out.printf(Locale.ROOT, "sgemm_square_%d_gflop_per_s=%.1f%n", s, Sgemm.square(s));
    }
}
