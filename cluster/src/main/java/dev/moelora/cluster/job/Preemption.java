package dev.moelora.cluster.job;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * SIGTERM as "checkpoint now and exit 0" (a scheduler preempting the job: Kubernetes, Slurm).
 * A step loop holds one while it runs and polls {@link #requested()} at every step boundary;
 * when it is set the loop writes a checkpoint of the current step, says so, and calls
 * {@link #done()}. With {@link #install} the JVM's SIGTERM sets it: a shutdown hook marks the
 * request, waits (at most its timeout) for {@code done()}, flushes stdout and stderr and halts the
 * JVM with status 0 — the only way a SIGTERM'd JVM exits 0. Halting skips every other shutdown
 * hook: whoever calls {@code done()} has released what must be released before. Without
 * {@code done()} in time (a step too long, or no loop polling), the hook returns and the JVM ends
 * as any SIGTERM'd one does (status 143). {@link #close()} ends the loop's claim: from then on a
 * SIGTERM ends the JVM at once.
 *
 * <p>{@link #when} is the same handle without a hook, requested when a condition holds at a
 * boundary: how tests stop a run at a chosen step, and how a coordinator can pass on a
 * preemption it heard of otherwise. One handle per step loop; never holds model state.
 */
public final class Preemption implements AutoCloseable {
    private final BooleanSupplier condition;
    private final Duration timeout;
    private final AtomicBoolean requested = new AtomicBoolean();
    private final CountDownLatch over = new CountDownLatch(1); // done() or close()
    private volatile boolean checkpointed;
    private Thread hook;

    private Preemption(BooleanSupplier condition, Duration timeout) {
        this.condition = condition;
        this.timeout = timeout;
    }

    /**
     * A handle set by this JVM's SIGTERM (or any other JVM shutdown while it is open).
     *
     * @param timeout how long the shutdown waits for the loop's checkpoint before giving up on it
     */
    public static Preemption install(Duration timeout) {
        Preemption p = new Preemption(() -> false, timeout);
        p.hook = new Thread(p::onShutdown, "moelora-preemption");
        Runtime.getRuntime().addShutdownHook(p.hook);
        return p;
    }

    /** A handle with no hook, requested from the first boundary at which {@code condition} holds (or by {@link #request()}). */
    public static Preemption when(BooleanSupplier condition) {
        return new Preemption(condition, Duration.ZERO);
    }

    /** A handle never requested unless {@link #request()} is called. */
    public static Preemption never() {
        return when(() -> false);
    }

    /** Whether the loop should checkpoint at this boundary and stop; once true, stays true. */
    public boolean requested() {
        if (!requested.get() && condition.getAsBoolean()) requested.set(true);
        return requested.get();
    }

    /** Asks the loop to checkpoint and stop at its next boundary. */
    public void request() {
        requested.set(true);
    }

    /**
     * The checkpoint is committed and reported: with a hook, the JVM now halts with status 0 (from
     * the hook's thread; the caller may be stopped at any point after this call).
     */
    public void done() {
        checkpointed = true;
        over.countDown();
    }

    /** The loop is over: the hook is removed (a shutdown already under way finds it closed and lets the JVM end as usual). */
    @Override
    public void close() {
        over.countDown();
        if (hook == null) return;
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running; it sees the loop is over
        }
    }

    private void onShutdown() {
        requested.set(true);
        try {
            if (!over.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                System.err.println("moelora: shutting down without a checkpoint: the step loop did not write one within " + timeout.toSeconds() + " s");
                System.err.flush();
                return;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        if (checkpointed) {
            System.out.flush();
            System.err.flush();
            Runtime.getRuntime().halt(0);
        }
    }
}
