package dev.moelora.cluster.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.runtime.ChildJvm;
import dev.moelora.cluster.runtime.ExpertParallelJob;
import dev.moelora.cluster.runtime.NodeProcesses;
import dev.moelora.cluster.single.EncoderJob;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The training runs the runtime benchmarks time, and what they read back: one encoder run from a
 * config file in this JVM or in a fresh child JVM (single-process, or the expert-parallel runtime
 * in one JVM), or with the router and the experts in node JVMs on 127.0.0.1 and the coordinator
 * here; then each step's seconds and real (unpadded) tokens from the run's metrics.jsonl. The
 * runs' own output is kept out of the benchmark's (a child's goes to its log). It never judges a
 * figure.
 */
final class TimedRuns {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** A whole run across JVMs may take this long before it counts as hung. */
    private static final Duration CLUSTER_TIMEOUT = Duration.ofMinutes(30);

    private TimedRuns() {}

    /** Per step, in order: wall seconds and real tokens (metrics.jsonl's seconds and tokens). */
    record Steps(double[] seconds, double[] tokens) {
        /** The steps after the first {@code warmup} (at least the last one stays). */
        Steps timed(int warmup) {
            int from = Math.min(warmup, seconds.length - 1);
            return new Steps(Arrays.copyOfRange(seconds, from, seconds.length), Arrays.copyOfRange(tokens, from, tokens.length));
        }

        double medianSeconds() {
            return Machine.median(seconds);
        }

        double meanTokens() {
            return Arrays.stream(tokens).average().orElseThrow();
        }
    }

    /** Writes {@code <work>/<name>.conf}: the settings plus run.name = name. */
    static Path write(Path work, String name, String conf) throws IOException {
        Path file = work.resolve(name + ".conf");
        Files.writeString(file, conf + "run.name = " + name + "\n");
        return file;
    }

    /** Runs the config's training in this JVM (runtime.mode single-process or local; cluster: this JVM is the coordinator). */
    static Steps run(Path file) throws IOException {
        return run(file, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    }

    /** The same, the run's output on {@code out}. */
    static Steps run(Path file, PrintStream out) throws IOException {
        RunConfig config = RunConfig.load(file, List.of());
        JobResult r = config.string("runtime.mode").equals("single-process") ? EncoderJob.run(config, out, false)
                : ExpertParallelJob.run(config, out, false);
        return read(r.runDir().resolve("metrics.jsonl"));
    }

    /**
     * Runs {@code <work>/<name>.conf} as {@link #run} does, in a fresh JVM ({@link ChildRun}) of this
     * one's java, classpath and -Xmx: a run's native ND4J buffers are not all freed when it ends,
     * and in one JVM they piled up over a sweep's runs (19 GB resident, then the OOM killer). Its
     * output goes to {@code <name>.log}, its result to {@code <name>.result.json} (with the child's
     * pid). A child that fails, or runs longer than a cluster run may, fails this with its exit code
     * and log.
     */
    static Steps inChildJvm(Path file) throws Exception {
        String name = file.getFileName().toString().replaceFirst("\\.conf$", "");
        Path log = file.resolveSibling(name + ".log"), result = file.resolveSibling(name + ".result.json");
        Files.deleteIfExists(result);
        Process child = ChildJvm.command(ChildJvm.thisHeap(), ChildRun.class.getName(),
                        List.of(file.toString(), result.toString(), Long.toString(ProcessHandle.current().pid())))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            if (!child.waitFor(CLUSTER_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new IllegalStateException("the " + name + " run's JVM did not end within " + CLUSTER_TIMEOUT.toMinutes() + " min; its log: " + log);
            }
            if (child.exitValue() != 0 || !Files.exists(result)) {
                throw new IllegalStateException("the " + name + " run's JVM exited with " + child.exitValue() + (Files.exists(result) ? "" : " and no result")
                        + "; its log: " + log + ", ending:\n" + tail(log, 30));
            }
            return ChildRun.read(result);
        } finally {
            if (child.isAlive()) {
                child.destroyForcibly();
                child.waitFor(30, TimeUnit.SECONDS);
            }
        }
    }

    private static String tail(Path file, int lines) throws IOException {
        List<String> all = Files.readAllLines(file);
        return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    /**
     * Runs {@code conf} (without runtime and cluster settings) with a router JVM and
     * {@code expertNodes} expert JVMs on 127.0.0.1 (Aeron UDP, Pekko Cluster on a free port), the
     * coordinator in this JVM; node logs are {@code <work>/<name>-router.log},
     * {@code <name>-expert-a.log}, ... A node that dies fails the run with the end of its log.
     */
    static Steps distributed(Path work, String name, String conf, int expertNodes, String routerHeap) throws Exception {
        int port = NodeProcesses.freeTcpPort();
        Path file = write(work, name, conf + "runtime.mode = cluster\nruntime.expert-nodes = " + expertNodes + "\ncluster.port = " + port
                + "\ncluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + port + "\"]\n");
        try (NodeProcesses nodes = new NodeProcesses(work)) {
            nodes.start(file, "router", name + "-router", routerHeap);
            for (int i = 0; i < expertNodes; i++) nodes.start(file, "expert", name + "-expert-" + (char) ('a' + i), "1g");
            Steps steps = nodes.whileAlive(CLUSTER_TIMEOUT, () -> run(file));
            nodes.awaitExit(60);
            return steps;
        }
    }

    private static Steps read(Path metrics) throws IOException {
        List<String> lines = Files.readAllLines(metrics);
        if (lines.isEmpty()) throw new IllegalStateException(metrics + " has no step: the run trained nothing");
        double[] seconds = new double[lines.size()], tokens = new double[lines.size()];
        for (int i = 0; i < lines.size(); i++) {
            JsonNode line = JSON.readTree(lines.get(i));
            seconds[i] = line.get("seconds").asDouble();
            tokens[i] = line.get("tokens").asDouble();
        }
        return new Steps(seconds, tokens);
    }

    /** Empties a benchmark's own scratch directory: every measurement starts fresh. */
    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
