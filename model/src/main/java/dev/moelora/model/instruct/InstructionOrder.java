package dev.moelora.model.instruct;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Which training sequences make each micro-batch: a seeded shuffle per epoch, read in order. With
 * length grouping (Hugging Face's {@code group_by_length}, an option of LLM-Adapters' finetune.py)
 * each window of 50 micro-batches of the shuffled order (its {@code LengthGroupedSampler}'s mega-batch)
 * is sorted longest first, so sequences of similar length share a micro-batch and little of it is
 * padding; the epoch still visits every example once. This is how "packing" is done here: no
 * row ever holds two examples. The cursor (epoch, position) is all a resumed run needs.
 */
public final class InstructionOrder implements dev.moelora.model.train.ExampleOrder {
    /** Micro-batches per sorted window, as Hugging Face's mega-batch multiplier. */
    static final int WINDOW_BATCHES = 50;

    private final int[] lengths;
    private final long seed;
    private final int window; // 0 without length grouping
    private int[] order;
    private int epoch, position;

    /** @param lengths each example's token count */
    public InstructionOrder(int[] lengths, long seed, boolean groupByLength, int batchSize) {
        if (lengths.length == 0) throw new IllegalArgumentException("no training examples");
        this.lengths = lengths.clone();
        this.seed = seed;
        this.window = groupByLength ? WINDOW_BATCHES * batchSize : 0;
        shuffle(0);
    }

    private void shuffle(int epoch) {
        this.epoch = epoch;
        this.position = 0;
        int n = lengths.length;
        Integer[] o = new Integer[n];
        for (int i = 0; i < n; i++) o[i] = i;
        SplittableRandom random = new SplittableRandom(seed * 1_000_003L + epoch);
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            Integer tmp = o[i];
            o[i] = o[j];
            o[j] = tmp;
        }
        if (window > 0) {
            for (int from = 0; from < n; from += window) {
                Arrays.sort(o, from, Math.min(n, from + window), (a, b) -> Integer.compare(lengths[b], lengths[a]));
            }
        }
        order = new int[n];
        for (int i = 0; i < n; i++) order[i] = o[i];
    }

    @Override
    public int[] nextIndices(int batchSize) {
        int[] batch = new int[batchSize];
        for (int i = 0; i < batchSize; i++) {
            if (position == order.length) shuffle(epoch + 1);
            batch[i] = order[position++];
        }
        return batch;
    }

    @Override public int size() { return lengths.length; }
    @Override public int epoch() { return epoch; }
    @Override public int position() { return position; }

    @Override
    public void seek(int epoch, int position) {
        if (epoch < 0 || position < 0 || position > lengths.length) {
            throw new IllegalArgumentException("data cursor (epoch " + epoch + ", position " + position + ") is outside the "
                    + lengths.length + " training examples");
        }
        shuffle(epoch);
        this.position = position;
    }
}
