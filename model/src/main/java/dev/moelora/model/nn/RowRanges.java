package dev.moelora.model.nn;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.ForkJoinWorkerThread;

/**
 * Splits the rows of a host loop into one contiguous range per core and runs the ranges at once:
 * how the fused element-wise kernels ({@link MaskedSoftmax}, the decoder's norms, activations,
 * RoPE and loss) use the machine's cores as ND4J's own ops do. Every row is computed by the same
 * code whichever range it falls in, and nothing is summed across ranges here, so results are
 * bit-identical for any number of cores; a loop that reduces over rows keeps a value per row and
 * sums them in row order itself. Small loops run on the caller's thread alone (waking a worker
 * costs more than they do).
 *
 * <p>The workers are daemon threads of one pool for the JVM, started on first use; they hold no
 * state between calls. They must never run blocking work: only the bodies of kernels.
 */
public final class RowRanges {
    /** A loop body over rows [from, to). */
    @FunctionalInterface
    public interface Body {
        void rows(int from, int to);
    }

    /** Below this many elements a loop runs on the calling thread. */
    static final long PARALLEL_ELEMENTS = 1 << 15;

    private static final int CORES = Runtime.getRuntime().availableProcessors();
    private static volatile ForkJoinPool pool;

    private RowRanges() {}

    /**
     * Runs body over [0, rows) in up to one range per core; {@code width} (elements per row) sizes
     * the work to decide whether splitting is worth it. Returns after every range is done; a range's
     * exception is rethrown here.
     */
    public static void run(int rows, int width, Body body) {
        int parts = (long) rows * width < PARALLEL_ELEMENTS ? 1 : Math.min(CORES, rows);
        if (parts <= 1) {
            body.rows(0, rows);
            return;
        }
        ForkJoinPool workers = pool();
        ForkJoinTask<?>[] others = new ForkJoinTask<?>[parts - 1];
        for (int p = 1; p < parts; p++) {
            int from = start(rows, parts, p), to = start(rows, parts, p + 1);
            others[p - 1] = workers.submit(() -> body.rows(from, to));
        }
        RuntimeException failure = null;
        try {
            body.rows(0, start(rows, parts, 1));
        } catch (RuntimeException e) {
            failure = e;
        }
        for (ForkJoinTask<?> t : others) {
            try {
                t.join();
            } catch (RuntimeException e) {
                if (failure == null) failure = e;
                else failure.addSuppressed(e);
            }
        }
        if (failure != null) throw failure;
    }

    private static int start(int rows, int parts, int p) {
        return (int) ((long) rows * p / parts);
    }

    private static ForkJoinPool pool() {
        ForkJoinPool p = pool;
        if (p == null) {
            synchronized (RowRanges.class) {
                p = pool;
                if (p == null) {
                    pool = p = new ForkJoinPool(Math.max(1, CORES - 1), pool -> {
                        ForkJoinWorkerThread t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
                        t.setName("moelora-kernel-" + t.getPoolIndex());
                        t.setDaemon(true);
                        return t;
                    }, null, false);
                }
            }
        }
        return p;
    }
}
