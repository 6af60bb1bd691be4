package dev.moelora.cluster.bench;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.setup.AdapterFamily;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.llama.DecoderBatch;
import dev.moelora.model.llama.LlamaConfig;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.NextTokenLoss;
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
 * Measured, not asserted: an adapter family's training step on a randomly initialised
 * LLaMA-shaped decoder (forward, next-token loss on every token, backward, clipping, AdamW), on
 * random tokens, timed by {@link StepBench}. Never part of a test's assertions. Run with
 * {@code OMP_WAIT_POLICY=PASSIVE} set (see BENCHMARKS.md on why). bench/decoder_step.py is the
 * same step in PyTorch: a change of shapes or defaults here must be made there too.
 */
public final class DecoderBench {
    /** d_model 256, 4 layers, 8 heads (no grouping), FFN 688, vocabulary 4096. */
    public static final LlamaConfig CONFIG = new LlamaConfig(4096, 256, 688, 4, 8, 8, 1e-5, 10000, false, 2048, 1, List.of(2));

    /** The default batch: sequences per step and tokens per sequence. */
    public static final int BATCH = 8, SEQ = 128;

    private DecoderBench() {}

    /**
     * The bench's adapter settings for a family: rank 8, alpha 16, no dropout, on q, k, v and o;
     * Tied-LoRA preset tl6; MoELoRA 4 experts, top-2, expert rank 2, balance weight 0.01,
     * contrastive weight 0.1, temperature 0.1, at most 32 features per expert. The other keys are
     * the run defaults.
     */
    public static List<String> settings(String family) {
        return new ArrayList<>(List.of("adapter.type=" + family, "adapter.rank=8", "adapter.alpha=16", "adapter.dropout=0",
                "adapter.targets=[q_proj, k_proj, v_proj, o_proj]", "adapter.preset=tl6", "adapter.experts=4", "adapter.top-k=2",
                "adapter.expert-rank=2", "adapter.balance-weight=0.01", "adapter.contrastive-weight=0.1", "adapter.temperature=0.1",
                "adapter.max-features-per-expert=32"));
    }

    /**
     * Times {@code steps} steps after {@code warmup} of the adapter {@code settings} describe
     * (run keys, at least {@code adapter.type}) on batches of {@code batch} random sequences of
     * {@code seq} tokens, every next token counted in the loss.
     */
    public static void run(PrintStream out, List<String> settings, int batch, int seq, StepBench.Options options) {
        if (batch < 1 || seq < 2) throw new IllegalArgumentException("the decoder bench needs --batch >= 1 and --seq >= 2, got " + batch + " and " + seq);
        RunConfig config = RunConfig.load(null, new ArrayList<>(settings));
        LlamaDecoder decoder = LlamaDecoder.random(CONFIG, DataType.FLOAT, 1);
        Adapters adapters = AdapterFamily.apply(config, decoder, 2);
        int n = batch * seq;
        SplittableRandom random = new SplittableRandom(3);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = random.nextInt(CONFIG.vocabSize());
        float[] mask = new float[n], lossMask = new float[n];
        Arrays.fill(mask, 1f);
        Arrays.fill(lossMask, 1f);
        DecoderBatch tokens = new DecoderBatch(batch, seq, ids, mask);
        decoder.reserve(batch, seq);
        StepBench.Step step = new StepBench.Step() {
            private INDArray logits;

            @Override
            public double forward() {
                adapters.setRowMask(mask);
                logits = decoder.forward(tokens);
                return NextTokenLoss.forwardBackward(logits, tokens, lossMask, logits);
            }

            @Override
            public void backward() {
                decoder.backward(logits);
            }
        };
        StepFlops.Flops flops = StepFlops.decoder(CONFIG, batch, seq).plus(StepFlops.adapter(StepFlops.Adapter.of(config), StepFlops.adapted(decoder.linears()), n));
        String title = String.format(Locale.ROOT, "decoder %s: %s; random LLaMA decoder C=%d L=%d H=%d KV=%d F=%d V=%d float32; batch %d x seq %d",
                config.string("adapter.type"), adapters.describe(), CONFIG.hidden(), CONFIG.layers(), CONFIG.heads(), CONFIG.kvHeads(),
                CONFIG.intermediate(), CONFIG.vocabSize(), batch, seq);
        StepBench.run(out, new StepBench.Setup(title, adapters, step, flops, n, new int[] {n, CONFIG.hidden(), CONFIG.intermediate()},
                "the MLP's gate/up projection", 1e-3), options);
    }
}
