package dev.moelora.model.llama;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits: greedy (the argmax, first on ties), or sampled
 * from a seeded stream after Hugging Face's warpers in their order: temperature, then top-k,
 * then top-p (the smallest set of most likely tokens whose probability reaches p). The same seed
 * and the same logits give the same tokens: it never draws from a global random generator.
 */
public final class Sampler {
    private final double temperature; // 0 for greedy
    private final int topK;           // 0 for no limit
    private final double topP;        // 1 for no limit
    private final SplittableRandom random;

    private Sampler(double temperature, int topK, double topP, long seed) {
        if (temperature < 0) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0 (0: no limit), got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
        this.random = new SplittableRandom(seed);
    }

    public static Sampler greedy() {
        return new Sampler(0, 0, 1, 0);
    }

    /**
     * @param temperature > 0 (logits are divided by it)
     * @param topK        keep the k most likely tokens; 0 keeps all
     * @param topP        keep the most likely tokens until their probability reaches topP; 1 keeps all
     */
    public static Sampler sampling(double temperature, int topK, double topP, long seed) {
        if (!(temperature > 0)) throw new IllegalArgumentException("sampling needs a temperature > 0, got " + temperature + "; use greedy()");
        return new Sampler(temperature, topK, topP, seed);
    }

    /** The next token given the logits (V) of the last position. */
    public int next(double[] logits) {
        int V = logits.length;
        if (temperature == 0) {
            int best = 0;
            for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
            return best;
        }
        Integer[] order = new Integer[V];
        for (int i = 0; i < V; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -logits[i]));
        int kept = topK == 0 ? V : Math.min(topK, V);
        double[] p = new double[kept];
        double max = logits[order[0]] / temperature, sum = 0;
        for (int r = 0; r < kept; r++) sum += p[r] = Math.exp(logits[order[r]] / temperature - max);
        double mass = 0;
        int nucleus = 0;
        while (nucleus < kept && mass / sum < topP) mass += p[nucleus++];
        double u = random.nextDouble() * mass;
        for (int r = 0; r < nucleus; r++) {
            u -= p[r];
            if (u < 0) return order[r];
        }
        return order[nucleus - 1];
    }
}
