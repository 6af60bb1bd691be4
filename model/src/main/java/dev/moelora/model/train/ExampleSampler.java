package dev.moelora.model.train;

import dev.moelora.model.data.Example;
import dev.moelora.model.data.Task;
import dev.moelora.model.task.TaskModel.Item;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Deterministic order of training examples: every task's train split pooled, shuffled per epoch
 * with a seeded generator, read in batches. Its cursor (epoch, position) is all a resumed run
 * needs to continue with the same batches.
 */
public final class ExampleSampler implements ExampleOrder {
    private final List<Item> items = new ArrayList<>();
    private final long seed;
    private int[] order;
    private int epoch;
    private int position;

    public ExampleSampler(List<Task> tasks, long seed) {
        for (Task t : tasks) for (Example e : t.train()) items.add(new Item(t, e));
        if (items.isEmpty()) throw new IllegalArgumentException("no training examples: every task's train split is empty");
        this.seed = seed;
        shuffle(0);
    }

    private void shuffle(int epoch) {
        this.epoch = epoch;
        this.position = 0;
        order = new int[items.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        SplittableRandom random = new SplittableRandom(seed * 1_000_003L + epoch);
        for (int i = order.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
    }

    public List<Item> next(int batchSize) {
        return items(nextIndices(batchSize));
    }

    /**
     * The next batch as indices into the pooled examples (task order, then each task's train order):
     * how a coordinator names a micro-batch to a router that loaded the same tasks.
     */
    @Override
    public int[] nextIndices(int batchSize) {
        int[] batch = new int[batchSize];
        for (int i = 0; i < batchSize; i++) {
            if (position == order.length) shuffle(epoch + 1);
            batch[i] = order[position++];
        }
        return batch;
    }

    /** The examples at these indices, as {@link #nextIndices} numbers them. */
    public List<Item> items(int[] indices) {
        List<Item> batch = new ArrayList<>(indices.length);
        for (int i : indices) {
            if (i < 0 || i >= items.size()) {
                throw new IllegalArgumentException("example index " + i + " is outside the " + items.size() + " training examples");
            }
            batch.add(items.get(i));
        }
        return batch;
    }

    @Override public int size() { return items.size(); }
    @Override public int epoch() { return epoch; }
    @Override public int position() { return position; }

    @Override
    public void seek(int epoch, int position) {
        if (position < 0 || position > items.size()) {
            throw new IllegalArgumentException("data cursor position " + position + " is outside the " + items.size() + " training examples");
        }
        shuffle(epoch);
        this.position = position;
    }
}
