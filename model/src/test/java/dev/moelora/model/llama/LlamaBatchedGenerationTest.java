package dev.moelora.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.nn.Init;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.tiedlora.TiedLora;
import dev.moelora.model.tiedlora.TiedLoraConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Batched greedy generation through the KV cache — prompts of different lengths right-padded into
 * one prefill, every row at its own position, finished rows leaving the batch — against generating
 * each prompt alone, token for token; and its logits against full forwards of each sequence.
 */
class LlamaBatchedGenerationTest {
    /** Lengths 1 to 9, so rows are padded in the prefill and sit at different positions in every step. */
    static final int[][] PROMPT_SHAPES = {{6, 12}, {1, 9}, {9, 5}, {3, 14}, {4, 3}};

    static List<int[]> prompts(int vocab, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<int[]> prompts = new ArrayList<>();
        for (int[] shape : PROMPT_SHAPES) {
            int[] p = new int[shape[0]];
            p[0] = 1;
            for (int i = 1; i < p.length; i++) p[i] = 3 + random.nextInt(vocab - 3);
            prompts.add(p);
        }
        return prompts;
    }

    static int[] limits() {
        return Arrays.stream(PROMPT_SHAPES).mapToInt(s -> s[1]).toArray();
    }

    static List<Sampler> greedy(int n) {
        List<Sampler> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(Sampler.greedy());
        return out;
    }

    /** Batched and one-at-a-time greedy generation on one decoder; returns how many rows stopped at EOS. */
    static int assertBatchedEqualsOneAtATime(LlamaDecoder decoder, List<int[]> prompts, int[] limits, String what) {
        List<int[]> alone = new ArrayList<>();
        for (int b = 0; b < prompts.size(); b++) alone.add(decoder.generate(prompts.get(b), limits[b], Sampler.greedy()));
        List<int[]> batched = decoder.generate(prompts, limits, greedy(prompts.size()));
        int stopped = 0;
        for (int b = 0; b < prompts.size(); b++) {
            assertArrayEquals(alone.get(b), batched.get(b), what + ": prompt " + b + " of length " + prompts.get(b).length);
            if (alone.get(b).length < limits[b]) stopped++;
        }
        // a batch in another order gives every prompt the same tokens
        List<int[]> reversed = new ArrayList<>(prompts);
        java.util.Collections.reverse(reversed);
        int[] reversedLimits = new int[limits.length];
        for (int b = 0; b < limits.length; b++) reversedLimits[b] = limits[limits.length - 1 - b];
        List<int[]> again = decoder.generate(reversed, reversedLimits, greedy(prompts.size()));
        for (int b = 0; b < prompts.size(); b++) assertArrayEquals(alone.get(b), again.get(prompts.size() - 1 - b), what + ", reversed batch: prompt " + b);
        return stopped;
    }

    @Test
    void batchedGreedyGenerationEqualsOneAtATimeAndRecomputingOnARandomDecoder() {
        LlamaConfig plain = new LlamaConfig(13, 16, 24, 2, 4, 2, 1e-6, 500000, true, 32, 1, List.of());
        LlamaDecoder free = LlamaDecoder.random(plain, DataType.FLOAT, 5);
        List<int[]> prompts = prompts(13, 1);
        int[] limits = limits();
        assertBatchedEqualsOneAtATime(free, prompts, limits, "no EOS");
        List<int[]> batched = free.generate(prompts, limits, greedy(prompts.size()));
        for (int b = 0; b < prompts.size(); b++) {
            assertEquals(limits[b], batched.get(b).length, "without EOS every row runs to its own limit");
            assertArrayEquals(LlamaGenerationTest.generateByRecomputing(free, prompts.get(b), limits[b], Sampler.greedy(), new ArrayList<>()),
                    batched.get(b), "full forwards, no cache: prompt " + b);
        }
        // an EOS that some rows reach early: those rows leave the batch while the others go on
        int eos = -1;
        for (int t = 0; t < 13 && eos < 0; t++) {
            int token = t;
            long rows = batched.stream().filter(out -> Arrays.stream(out).anyMatch(x -> x == token)).count();
            if (rows >= 1 && rows < prompts.size()) eos = token;
        }
        LlamaDecoder withEos = LlamaDecoder.random(new LlamaConfig(13, 16, 24, 2, 4, 2, 1e-6, 500000, true, 32, 1, List.of(eos)), DataType.FLOAT, 5);
        int stopped = assertBatchedEqualsOneAtATime(withEos, prompts, limits, "EOS " + eos);
        assertTrue(stopped >= 1 && stopped < prompts.size(), stopped + " of " + prompts.size() + " rows stopped at EOS " + eos + "; the test needs some of each");
    }

    @Test
    void batchedCachedLogitsEqualFullForwardLogitsOfEachSequence() {
        LlamaDecoder decoder = LlamaDecoder.random(LlamaGenerationTest.GQA, DataType.DOUBLE, 3);
        List<int[]> prompts = prompts(13, 2);
        int B = prompts.size(), steps = 4;
        int[][] continuation = new int[B][steps];
        SplittableRandom random = new SplittableRandom(9);
        for (int[] c : continuation) for (int t = 0; t < steps; t++) c[t] = 3 + random.nextInt(10);
        List<double[][]> expected = new ArrayList<>();
        for (int b = 0; b < B; b++) {
            int[] seq = Arrays.copyOf(prompts.get(b), prompts.get(b).length + steps);
            System.arraycopy(continuation[b], 0, seq, prompts.get(b).length, steps);
            float[] mask = new float[seq.length];
            Arrays.fill(mask, 1f);
            INDArray full = decoder.forward(new DecoderBatch(1, seq.length, seq, mask));
            double[][] rows = new double[steps + 1][];
            for (int t = 0; t <= steps; t++) rows[t] = full.getRow(prompts.get(b).length - 1 + t).toDoubleVector();
            expected.add(rows);
        }
        LlamaDecoder.KvCache cache = decoder.newCache(B, 9 + steps, 9);
        INDArray logits = decoder.prefill(cache, prompts);
        double worst = 0;
        for (int t = 0; t <= steps; t++) {
            for (int b = 0; b < B; b++) worst = Math.max(worst, maxDifference(logits.getRow(b).toDoubleVector(), expected.get(b)[t]));
            if (t == steps) break;
            int[] next = new int[B];
            for (int b = 0; b < B; b++) next[b] = continuation[b][t];
            logits = decoder.step(cache, next);
        }
        assertTrue(worst < 1e-12, "largest difference " + worst);
        for (int b = 0; b < B; b++) assertEquals(prompts.get(b).length + steps, cache.length(b));

        // removing a row moves the last into its place; the others go on unchanged
        int moved = cache.remove(1);
        assertEquals(B - 1, moved);
        assertEquals(B - 1, cache.rows());
        assertEquals(prompts.get(B - 1).length + steps, cache.length(1), "the last row now sits in row 1");
    }

    private static double maxDifference(double[] a, double[] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        return worst;
    }

    /** The tiny golden checkpoints in float32, bare and under each adapter family with nonzero random tensors. */
    @ParameterizedTest(name = "{0} with {1}")
    @CsvSource({"gqa-f32, none", "gqa-f32, lora", "gqa-f32, tl6", "gqa-f32, moelora",
        "tied-bf16, none", "tied-bf16, moelora", "sharded-f16, lora", "sharded-f16, tl6"})
    void batchedGreedyGenerationEqualsOneAtATimeOnTheGoldenCheckpoints(String name, String family) throws Exception {
        Path dir = LlamaGoldenTest.caseDir(name);
        LlamaDecoder decoder = LlamaCheckpoint.load(dir, DataType.FLOAT);
        Adapters adapters = randomAdapters(decoder, family, 11);
        adapters.setTraining(false);
        List<int[]> prompts = prompts(decoder.config().vocabSize(), 3);
        assertBatchedEqualsOneAtATime(decoder, prompts, limits(), name + " with " + family);
    }

    /** An adapter family on every projection whose tensors are all random (B and the gates nonzero), so it changes the output. */
    static Adapters randomAdapters(LlamaDecoder decoder, String family, long seed) {
        List<String> all = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
        Adapters adapters = switch (family) {
            case "none" -> Adapters.NONE;
            case "lora" -> Lora.adapters(decoder, new LoraConfig(2, 6, 0, all), seed);
            case "tl6" -> TiedLora.apply(decoder, new TiedLoraConfig("tl6", 2, 6, 0, all, false), seed);
            case "moelora" -> MoeLora.apply(decoder, new MoeLoraConfig(4, 2, 2, 6, 0, all, 0.01, 0.1, 0.1, 8), seed);
            default -> throw new IllegalArgumentException(family);
        };
        SplittableRandom random = new SplittableRandom(seed);
        for (Parameter p : adapters.parameters()) {
            INDArray r = Init.normal(random, p.value().dataType(), p.name().contains("gate") ? 1.0 : 0.3, p.value().shape());
            p.value().assign(p.name().endsWith("_u") || p.name().endsWith("_v") ? r.addi(1.0) : r);
        }
        return adapters;
    }
}
