package dev.moelora.cluster.bench;

import dev.moelora.model.llama.DecoderBatch;
import dev.moelora.model.llama.LlamaConfig;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.NextTokenLoss;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.lora.LoraLinear;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Measured, not asserted: the LoRA training step on a randomly initialised LLaMA-shaped decoder
 * (forward, next-token loss, backward, AdamW), with the machine it ran on. Never part of a test.
 * Run with {@code OMP_WAIT_POLICY=PASSIVE} set (see BENCHMARKS.md on why).
 */
public final class DecoderBench {
    /** d_model 256, 4 layers, 8 heads (no grouping), FFN 688, vocabulary 4096. */
    public static final LlamaConfig CONFIG = new LlamaConfig(4096, 256, 688, 4, 8, 8, 1e-5, 10000, false, 2048, 1, List.of(2));

    /** The default batch: sequences per step and tokens per sequence. */
    public static final int BATCH = 8, SEQ = 128;

    private DecoderBench() {}

    /**
     * Times {@code steps} steps after {@code warmup} steps of LoRA r = 8 (alpha 16, no dropout) on
     * q, k, v and o, batches of {@code batch} random sequences of {@code seq} tokens, every next
     * token counted in the loss. Prints medians.
     */
    public static void run(PrintStream out, int batch, int seq, int warmup, int steps) throws IOException {
        out.println(Machine.describe());
        LlamaDecoder decoder = LlamaDecoder.random(CONFIG, DataType.FLOAT, 1);
        List<LoraLinear> adapters = Lora.apply(decoder, new LoraConfig(8, 16, 0, List.of("q_proj", "k_proj", "v_proj", "o_proj")), 2);
        List<Parameter> params = Lora.parameters(adapters);
        AdamW adam = AdamW.withDefaults(params, 0.0);
        int n = batch * seq;
        SplittableRandom random = new SplittableRandom(3);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = random.nextInt(CONFIG.vocabSize());
        float[] mask = new float[n], lossMask = new float[n];
        Arrays.fill(mask, 1f);
        Arrays.fill(lossMask, 1f);
        DecoderBatch tokens = new DecoderBatch(batch, seq, ids, mask);
        decoder.reserve(batch, seq);
        INDArray rowScale = Nd4j.create(DataType.FLOAT, n, 1);
        double[] total = new double[steps], fwd = new double[steps], bwd = new double[steps];
        double loss = 0;
        for (int i = -warmup; i < steps; i++) {
            long t0 = System.nanoTime();
            for (Parameter p : params) p.zeroGrad();
            INDArray logits = decoder.forward(tokens);
            loss = NextTokenLoss.forwardBackward(logits, tokens, lossMask, logits, rowScale);
            long t1 = System.nanoTime();
            decoder.backward(logits);
            long t2 = System.nanoTime();
            adam.step(1e-3);
            long t3 = System.nanoTime();
            if (i >= 0) {
                total[i] = (t3 - t0) / 1e6;
                fwd[i] = (t1 - t0) / 1e6;
                bwd[i] = (t2 - t1) / 1e6;
            }
        }
        long trainable = params.stream().mapToLong(Parameter::size).sum();
        out.printf(Locale.ROOT, "LLaMA decoder C=%d L=%d H=%d KV=%d F=%d V=%d, float32; LoRA r=8 on q,k,v,o (%d trainable); batch %d x seq %d = %d tokens%n",
                CONFIG.hidden(), CONFIG.layers(), CONFIG.heads(), CONFIG.kvHeads(), CONFIG.intermediate(), CONFIG.vocabSize(),
                trainable, batch, seq, n);
        out.printf(Locale.ROOT, "step (forward + loss + backward + AdamW): %.1f ms median of %d after %d warm-up "
                        + "(forward + loss %.1f ms, backward %.1f ms); %.0f tokens/s; last loss %.4f%n",
                Machine.median(total), steps, warmup, Machine.median(fwd), Machine.median(bwd), n / Machine.median(total) * 1e3, loss);
    }
}
