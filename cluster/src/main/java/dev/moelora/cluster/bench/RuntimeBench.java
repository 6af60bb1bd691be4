package dev.moelora.cluster.bench;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Measured, not asserted: the same MoELoRA training steps (same data, same seed, so the same
 * arithmetic) run single-process, on the expert-parallel runtime in one JVM (router and expert
 * actors, Aeron IPC), and with the router and the experts in other JVMs (a router JVM and two
 * expert JVMs on 127.0.0.1, Aeron UDP, Pekko Cluster). Prints the median step time of each and
 * the ratios; the first two steps are warm-up and not counted. {@link ScalingBench} sweeps the
 * same comparison over experts, expert nodes and tokens per step.
 */
public final class RuntimeBench {
    private RuntimeBench() {}

    public static void run(PrintStream out, int steps, int batch, int seq, Path work) throws Exception {
        out.println(Machine.describe());
        TimedRuns.deleteTree(work);
        Files.createDirectories(work);
        String common = """
                adapter.type = moelora
                data.generated { train-per-task = 200, test-per-task = 4 }
                data.max-length = %d
                train { steps = %d, batch-size = %d, eval-batch-size = 8, warmup-steps = 0 }
                run.dir = "%s"
                """.formatted(seq, steps, batch, work.toString().replace("\\", "/"));
        TimedRuns.Steps singleRun = TimedRuns.run(TimedRuns.write(work, "single-process", common));
        double single = singleRun.timed(2).medianSeconds();
        double local = TimedRuns.run(TimedRuns.write(work, "local", common + "runtime.mode = local\nruntime.expert-nodes = 2\n")).timed(2).medianSeconds();
        double cluster = TimedRuns.distributed(work, "cluster", common, 2, "2g").timed(2).medianSeconds();
        double tokens = singleRun.meanTokens();
        out.printf(Locale.ROOT, "MoELoRA step (E=8, top-2, all-MiniLM-L6-v2, generated suite, batch %d, max length %d; median of %d steps after 2 warm-up):%n",
                batch, seq, steps - 2);
        out.printf(Locale.ROOT, "  single-process (experts inside the modules)        : %.3f s/step  %6.0f tokens/s%n", single, tokens / single);
        out.printf(Locale.ROOT, "  colocated: router + 2 expert nodes in one JVM, IPC : %.3f s/step  %6.0f tokens/s  (%.2fx single-process)%n",
                local, tokens / local, local / single);
        out.printf(Locale.ROOT, "  distributed: router JVM + 2 expert JVMs, UDP       : %.3f s/step  %6.0f tokens/s  (%.2fx colocated, %.2fx single-process)%n",
                cluster, tokens / cluster, cluster / local, cluster / single);
    }
}
