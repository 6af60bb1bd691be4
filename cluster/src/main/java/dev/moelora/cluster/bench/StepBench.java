package dev.moelora.cluster.bench;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.train.Trainer;
import java.io.PrintStream;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.profiler.OpProfiler;
import org.nd4j.linalg.profiler.ProfilerConfig;

/**
 * Measured, not asserted: one adapter family's training step on one model, timed phase by phase
 * with the Java heap it allocates, the same step the single-process trainer runs
 * ({@code OptimizerStep} with one micro-batch): zeroed gradients, the adapters reseeded, forward
 * and loss, backward, the auxiliary losses taken, global-norm clipping at 1 and AdamW. It prints
 * one {@code key=value} line per figure (medians of the timed steps after the warm-up), so that
 * a run can be pasted into BENCHMARKS.md and read by {@code bench/compare-pytorch.sh}.
 *
 * <p>Phases: forward = the model's forward and loss (MoELoRA's routing and auxiliary losses
 * included); backward = the model's backward (the adapters' gradients and MoELoRA's auxiliary
 * gradients included); optimizer = zeroing the gradients, clipping and AdamW.
 *
 * <p>Heap bytes come from the JVM's own counter of the thread that runs the step
 * ({@code com.sun.management.ThreadMXBean.getCurrentThreadAllocatedBytes}): ND4J runs its
 * kernels on native OpenMP and OpenBLAS threads, which allocate nothing on the Java heap, so the
 * step's thread is where all of it happens. On JDK 21+ the total over every thread is printed as
 * well, as a check. ND4J's tensors live off the heap, and ND4J 1.0.0-M2.1's CPU backend keeps
 * no counter of them (its AllocationsTracker stays at 0 and JavaCPP tracks only its own small
 * pointers), so the off-heap side is the process's resident memory ({@link Pointer#physicalBytes()},
 * cheap) before and after the timed steps, and the number of ND4J operations one step invokes,
 * counted by ND4J's OpProfiler in one extra, untimed step after the timed ones. The bench itself
 * allocates nothing inside a timed step.
 */
public final class StepBench {
    /** A model's forward and backward with its adapters applied: what the bench times, without the optimizer. */
    public interface Step {
        /** Forward and loss of the step's batch; returns the task loss (0 for a model the bench gives no loss). */
        double forward();

        /** Backward of the last forward, gradients accumulated into the adapters' parameters. */
        void backward();
    }

    /**
     * What is timed and what its figures are measured against.
     *
     * @param title      one line naming model, adapter and batch, e.g. "decoder lora: LoRA r=8 ... ; batch 8 x seq 128"
     * @param flops      the step's matrix products ({@link StepFlops})
     * @param tokens     tokens per step
     * @param sgemm      (m, k, n) of the step's representative product, measured in the same process
     * @param sgemmWhat  which product that is, e.g. "the MLP's up projection"
     * @param lr         AdamW's learning rate
     */
    public record Setup(String title, Adapters adapters, Step step, StepFlops.Flops flops, int tokens, int[] sgemm, String sgemmWhat, double lr) {}

    /**
     * How the bench runs: timed steps after warm-up steps, and whether to print ND4J's OpProfiler
     * dashboard (time per operation type) of the untimed counting step.
     */
    public record Options(int warmup, int steps, boolean profile) {}

    private static final com.sun.management.ThreadMXBean THREADS = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    /** getTotalThreadAllocatedBytes(), JDK 21+; null before. */
    private static final MethodHandle TOTAL_ALLOCATED = totalAllocated();
    private static final int FORWARD = 0, BACKWARD = 1, OPTIMIZER = 2;

    private StepBench() {}

    private static MethodHandle totalAllocated() {
        try {
            return MethodHandles.publicLookup().findVirtual(com.sun.management.ThreadMXBean.class, "getTotalThreadAllocatedBytes",
                    MethodType.methodType(long.class));
        } catch (NoSuchMethodException | IllegalAccessException e) {
            return null; // JDK 17-20: only the step thread's counter, which is where the step allocates
        }
    }

    private static long totalAllocatedBytes() {
        if (TOTAL_ALLOCATED == null) return -1;
        try {
            return (long) TOTAL_ALLOCATED.invokeExact(THREADS);
        } catch (Throwable e) {
            throw new IllegalStateException("reading the JVM's allocation counter", e);
        }
    }

    /** Times {@code steps} steps after {@code warmup}; prints the machine, the load and the figures. */
    public static void run(PrintStream out, Setup setup, Options options) {
        int warmup = options.warmup(), steps = options.steps();
        double lr = setup.lr();
        if (steps < 1) throw new IllegalArgumentException("--steps must be >= 1, got " + steps);
        if (warmup < 0) throw new IllegalArgumentException("--warmup must be >= 0, got " + warmup);
        if (!THREADS.isCurrentThreadCpuTimeSupported() || !THREADS.isThreadAllocatedMemorySupported()) {
            throw new IllegalStateException("this JVM does not count allocated bytes per thread");
        }
        THREADS.setThreadAllocatedMemoryEnabled(true);
        out.println(Machine.describe());
        out.println("load_at_start=" + Machine.load() + " (1, 5, 15 min)");
        Adapters adapters = setup.adapters();
        List<Parameter> params = adapters.parameters();
        if (params.isEmpty()) throw new IllegalArgumentException("the adapter has no trainable parameters: nothing to time");
        AdamW adam = AdamW.withDefaults(params, 0.0);
        adapters.setTraining(true);
        adapters.setAuxiliaryLossScale(1.0);

        double[][] ms = new double[3][steps];
        long[][] bytes = new long[3][steps];
        long[] allThreads = new long[steps];
        double loss = 0, aux = 0;
        long rssBefore = 0, gcCountBefore = 0, gcMsBefore = 0;
        for (int i = -warmup; i < steps; i++) {
            if (i == 0) {
                rssBefore = Pointer.physicalBytes();
                gcCountBefore = gcCount();
                gcMsBefore = gcMillis();
            }
            long all0 = totalAllocatedBytes();
            long b0 = THREADS.getCurrentThreadAllocatedBytes(), t0 = System.nanoTime();
            adam.zeroGrad();
            adapters.reseed(Trainer.microBatchSeed(42, i + warmup, 0));
            long b1 = THREADS.getCurrentThreadAllocatedBytes(), t1 = System.nanoTime();
            loss = setup.step().forward();
            long b2 = THREADS.getCurrentThreadAllocatedBytes(), t2 = System.nanoTime();
            setup.step().backward();
            aux = adapters.takeAuxiliaryLoss();
            long b3 = THREADS.getCurrentThreadAllocatedBytes(), t3 = System.nanoTime();
            adam.clipGradients(1.0);
            adam.step(lr);
            long b4 = THREADS.getCurrentThreadAllocatedBytes(), t4 = System.nanoTime();
            long all1 = totalAllocatedBytes();
            if (!Double.isFinite(loss + aux)) throw new IllegalStateException("the loss became " + (loss + aux) + " at step " + (i + warmup));
            if (i < 0) continue;
            ms[FORWARD][i] = (t2 - t1) / 1e6;
            ms[BACKWARD][i] = (t3 - t2) / 1e6;
            ms[OPTIMIZER][i] = ((t1 - t0) + (t4 - t3)) / 1e6;
            bytes[FORWARD][i] = b2 - b1;
            bytes[BACKWARD][i] = b3 - b2;
            bytes[OPTIMIZER][i] = (b1 - b0) + (b4 - b3);
            allThreads[i] = all1 - all0;
        }
        long rssAfter = Pointer.physicalBytes();
        long gcs = gcCount() - gcCountBefore, gcMs = gcMillis() - gcMsBefore;
        long ops = countOperations(setup, adam, lr, options.profile());
        double[] total = new double[steps];
        long[] heap = new long[steps];
        for (int i = 0; i < steps; i++) {
            total[i] = ms[FORWARD][i] + ms[BACKWARD][i] + ms[OPTIMIZER][i];
            heap[i] = bytes[FORWARD][i] + bytes[BACKWARD][i] + bytes[OPTIMIZER][i];
        }
        double step = Machine.median(total);
        int[] g = setup.sgemm();
        double sgemm = Sgemm.rate(g[0], g[1], g[2]);
        double gflops = setup.flops().total() / 1e9, rate = gflops / (step / 1e3);

        out.println("bench=" + setup.title());
        out.printf(Locale.ROOT, "trainable_parameters=%d%n", adapters.trainableParameters());
        out.printf(Locale.ROOT, "tokens_per_step=%d (timed steps %d after %d warm-up; medians)%n", setup.tokens(), steps, warmup);
        out.printf(Locale.ROOT, "tokens_per_s=%.0f%n", setup.tokens() / step * 1e3);
        out.printf(Locale.ROOT, "step_ms=%.1f%n", step);
        out.printf(Locale.ROOT, "forward_ms=%.1f (forward + loss)%n", Machine.median(ms[FORWARD]));
        out.printf(Locale.ROOT, "backward_ms=%.1f%n", Machine.median(ms[BACKWARD]));
        out.printf(Locale.ROOT, "optimizer_ms=%.1f (zero grads + clip + AdamW)%n", Machine.median(ms[OPTIMIZER]));
        out.printf(Locale.ROOT, "gflop_per_step=%.2f (matrix products: forward %.2f, backward %.2f)%n", gflops,
                setup.flops().forward() / 1e9, setup.flops().backward() / 1e9);
        out.printf(Locale.ROOT, "gflop_per_s=%.1f%n", rate);
        out.printf(Locale.ROOT, "sgemm_gflop_per_s=%.1f (%dx%d * %dx%d, %s, this process)%n", sgemm, g[0], g[1], g[1], g[2], setup.sgemmWhat());
        out.printf(Locale.ROOT, "sgemm_fraction=%.3f%n", rate / sgemm);
        out.printf(Locale.ROOT, "heap_bytes_per_step=%d (forward %d, backward %d, optimizer %d; the step's thread)%n", median(heap),
                median(bytes[FORWARD]), median(bytes[BACKWARD]), median(bytes[OPTIMIZER]));
        if (TOTAL_ALLOCATED != null) out.printf(Locale.ROOT, "heap_bytes_per_step_all_threads=%d%n", median(allThreads));
        out.printf(Locale.ROOT, "rss_mib=%.0f -> %.0f (process resident memory before -> after the timed steps; ND4J keeps no off-heap counter)%n",
                rssBefore / 1048576.0, rssAfter / 1048576.0);
        out.printf(Locale.ROOT, "nd4j_ops_per_step=%d (OpProfiler, one untimed step; %.1f us of step per op)%n", ops, step * 1e3 / Math.max(1, ops));
        out.printf(Locale.ROOT, "gc_during_timed_steps=%d (%d ms)%n", gcs, gcMs);
        out.printf(Locale.ROOT, "loss=%.4f (task, last step; auxiliary %.6f)%n", loss, aux);
        out.println("load_at_end=" + Machine.load());
    }

    /**
     * ND4J operations one whole step invokes (GEMMs included), counted with ND4J's profiler switched
     * on for that step only; with {@code dashboard}, ND4J's own table of time per operation type.
     */
    private static long countOperations(Setup setup, AdamW adam, double lr, boolean dashboard) {
        OpProfiler profiler = OpProfiler.getInstance();
        profiler.reset();
        Nd4j.getExecutioner().setProfilingConfig(ProfilerConfig.builder().checkElapsedTime(true).build());
        try {
            adam.zeroGrad();
            setup.step().forward();
            setup.step().backward();
            setup.adapters().takeAuxiliaryLoss();
            adam.clipGradients(1.0);
            adam.step(lr);
            if (dashboard) profiler.printOutDashboard(); // through ND4J's logger: time per operation type, with profiling on
            return profiler.getInvocationsCount();
        } finally {
            Nd4j.getExecutioner().setProfilingConfig(ProfilerConfig.builder().build());
            profiler.reset();
        }
    }

    private static long median(long[] values) {
        long[] s = values.clone();
        java.util.Arrays.sort(s);
        return s[s.length / 2];
    }

    private static long gcCount() {
        long n = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) n += Math.max(0, gc.getCollectionCount());
        return n;
    }

    private static long gcMillis() {
        long n = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) n += Math.max(0, gc.getCollectionTime());
        return n;
    }
}
