package dev.moelora.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Generation through the KV cache against recomputing the whole prefix at every step. */
class LlamaGenerationTest {
    /** V 13, C 16, F 24, L 2, H 4 query heads over KV 2 (grouped-query), D 4; EOS 12. */
    static final LlamaConfig GQA = new LlamaConfig(13, 16, 24, 2, 4, 2, 1e-6, 500000, true, 32, 1, List.of(12));
    static final int[] PROMPT = {1, 7, 3, 9};

    /** Generation without a cache: a full forward over the prefix for every new token. */
    static int[] generateByRecomputing(LlamaDecoder decoder, int[] prompt, int maxNew, Sampler sampler, List<double[]> logitsSeen) {
        int[] seq = Arrays.copyOf(prompt, prompt.length + maxNew);
        int n = prompt.length;
        while (n < prompt.length + maxNew) {
            float[] mask = new float[n];
            Arrays.fill(mask, 1f);
            INDArray logits = decoder.forward(new DecoderBatch(1, n, Arrays.copyOf(seq, n), mask));
            double[] last = logits.getRow(n - 1).toDoubleVector();
            logitsSeen.add(last);
            seq[n++] = sampler.next(last);
            if (decoder.config().eosTokenIds().contains(seq[n - 1])) break;
        }
        return Arrays.copyOfRange(seq, prompt.length, n);
    }

    /** GQA, and a decoder with a bias on every projection and Llama 3.1's rescaled RoPE ({@link LlamaDecoderGradientTest#BIASED}). */
    @ParameterizedTest
    @ValueSource(strings = {"gqa", "biased"})
    void cachedLogitsEqualFullForwardLogitsWithGroupedQueryAttention(String which) {
        LlamaConfig config = which.equals("biased") ? LlamaDecoderGradientTest.BIASED : GQA;
        LlamaDecoder decoder = LlamaDecoder.random(config, DataType.DOUBLE, 3);
        int[] sequence = {1, 7, 3, 9, 4, 4, 10, 2, 5};
        float[] mask = new float[sequence.length];
        Arrays.fill(mask, 1f);
        INDArray full = decoder.forward(new DecoderBatch(1, sequence.length, sequence, mask)).dup();
        LlamaDecoder.KvCache cache = decoder.newCache(1, sequence.length, PROMPT.length);
        INDArray cached = decoder.prefill(cache, List.of(PROMPT));
        double worst = cached.sub(full.getRow(PROMPT.length - 1).reshape(1, config.vocabSize())).amaxNumber().doubleValue();
        for (int t = PROMPT.length; t < sequence.length; t++) {
            cached = decoder.step(cache, new int[] {sequence[t]});
            worst = Math.max(worst, cached.sub(full.getRow(t).reshape(1, config.vocabSize())).amaxNumber().doubleValue());
        }
        assertEquals(sequence.length, cache.length(0));
        assertTrue(worst < 1e-12, "largest difference " + worst);
        assertThrows(IllegalArgumentException.class, () -> decoder.step(cache, new int[] {3}), "the cache is full");
        assertThrows(IllegalStateException.class, () -> decoder.backward(full), "generation keeps nothing for backward");
    }

    @Test
    void greedyAndSampledGenerationWithTheCacheEqualRecomputingThePrefix() {
        LlamaDecoder decoder = LlamaDecoder.random(new LlamaConfig(13, 16, 24, 2, 4, 2, 1e-6, 500000, true, 32, 1, List.of()),
                DataType.DOUBLE, 3);
        java.util.Set<String> distinct = new java.util.HashSet<>();
        for (int seed = 0; seed < 3; seed++) {
            Sampler[][] pairs = {
                {Sampler.greedy(), Sampler.greedy()},
                {Sampler.sampling(1.3, 0, 1.0, seed), Sampler.sampling(1.3, 0, 1.0, seed)},
                {Sampler.sampling(0.8, 5, 1.0, seed), Sampler.sampling(0.8, 5, 1.0, seed)},
                {Sampler.sampling(1.0, 0, 0.7, seed), Sampler.sampling(1.0, 0, 0.7, seed)}};
            for (Sampler[] pair : pairs) {
                int[] cached = decoder.generate(PROMPT, 10, pair[0]);
                int[] recomputed = generateByRecomputing(decoder, PROMPT, 10, pair[1], new java.util.ArrayList<>());
                assertEquals(10, cached.length, "no EOS configured: runs to maxNewTokens");
                assertArrayEquals(recomputed, cached, "seed " + seed);
                distinct.add(Arrays.toString(cached));
            }
        }
        assertTrue(distinct.size() > 3, "the samplers draw different continuations: " + distinct);
    }

    @Test
    void generationStopsAfterTheEndOfSequenceToken() {
        LlamaDecoder plain = LlamaDecoder.random(new LlamaConfig(13, 16, 24, 2, 4, 2, 1e-6, 500000, true, 32, 1, List.of()), DataType.DOUBLE, 4);
        int[] free = plain.generate(PROMPT, 6, Sampler.greedy());
        int eos = free[2];
        int stop = 0;
        while (free[stop] != eos) stop++;
        LlamaDecoder withEos = LlamaDecoder.random(new LlamaConfig(13, 16, 24, 2, 4, 2, 1e-6, 500000, true, 32, 1, List.of(eos)), DataType.DOUBLE, 4);
        assertArrayEquals(Arrays.copyOf(free, stop + 1), withEos.generate(PROMPT, 6, Sampler.greedy()), "stops at the first EOS, which it returns");
    }

    @Test
    void samplerFiltersAsHuggingFaceWarpers() {
        double[] logits = {0.0, 3.0, 1.0, 2.9, -5.0};
        assertEquals(1, Sampler.greedy().next(logits));
        assertEquals(1, Sampler.sampling(1.0, 1, 1.0, 7).next(logits), "top-k 1 is greedy");
        assertEquals(1, Sampler.sampling(1.0, 0, 1e-9, 7).next(logits), "a tiny top-p keeps only the most likely token");
        Sampler topTwo = Sampler.sampling(1.0, 2, 1.0, 7);
        int[] counts = new int[5];
        for (int i = 0; i < 2000; i++) counts[topTwo.next(logits)]++;
        assertEquals(2000, counts[1] + counts[3], "top-k 2 draws only the two most likely tokens");
        assertTrue(counts[1] > 900 && counts[3] > 800, Arrays.toString(counts));
        assertArrayEquals(draw(Sampler.sampling(2.0, 0, 0.9, 5), logits), draw(Sampler.sampling(2.0, 0, 0.9, 5), logits), "seeded");
    }

    static int[] draw(Sampler s, double[] logits) {
        int[] out = new int[50];
        for (int i = 0; i < out.length; i++) out[i] = s.next(logits);
        return out;
    }
}
