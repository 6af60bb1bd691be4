package dev.moelora.cluster.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.runtime.ExpertParallelJob;
import dev.moelora.cluster.runtime.NodeProcesses;
import dev.moelora.cluster.single.EncoderJob;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Measured, not asserted: the same MoELoRA training steps (same data, same seed, so the same
 * arithmetic) run single-process, on the expert-parallel runtime in one JVM (router and expert
 * actors, Aeron IPC), and with the router and the experts in other JVMs (a router JVM and two
 * expert JVMs on 127.0.0.1, Aeron UDP, Pekko Cluster). Prints the median step time of each and
 * the ratios; the first two steps are warm-up and not counted.
 */
public final class RuntimeBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    private RuntimeBench() {}

    public static void run(PrintStream out, int steps, int batch, int seq, Path work) throws Exception {
        out.println(Machine.describe());
        deleteTree(work); // the benchmark's own scratch directory: every measurement starts fresh
        Files.createDirectories(work);
        String common = """
                adapter.type = moelora
                data.generated { train-per-task = 200, test-per-task = 4 }
                data.max-length = %d
                train { steps = %d, batch-size = %d, eval-batch-size = 8, warmup-steps = 0 }
                run.dir = "%s"
                """.formatted(seq, steps, batch, work.toString().replace("\\", "/"));
        double single = median(train(work, "single-process", common));
        double local = median(train(work, "local", common + "runtime.mode = local\nruntime.expert-nodes = 2\n"));
        int port = NodeProcesses.freeTcpPort();
        String clusterConf = common + "runtime.mode = cluster\nruntime.expert-nodes = 2\ncluster.port = " + port
                + "\ncluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + port + "\"]\n";
        double cluster;
        try (NodeProcesses nodes = new NodeProcesses(work)) {
            Path file = write(work, "cluster", clusterConf);
            nodes.start(file, "router", "bench-router", "2g");
            nodes.start(file, "expert", "bench-expert-a", "1g");
            nodes.start(file, "expert", "bench-expert-b", "1g");
            cluster = median(nodes.whileAlive(java.time.Duration.ofMinutes(30), () -> run(file)));
            nodes.awaitExit(60);
        }
        double tokens = meanTokens(work.resolve("single-process"));
        out.printf(Locale.ROOT, "MoELoRA step (E=8, top-2, all-MiniLM-L6-v2, generated suite, batch %d, max length %d; median of %d steps after 2 warm-up):%n",
                batch, seq, steps - 2);
        out.printf(Locale.ROOT, "  single-process (experts inside the modules)        : %.3f s/step  %6.0f tokens/s%n", single, tokens / single);
        out.printf(Locale.ROOT, "  colocated: router + 2 expert nodes in one JVM, IPC : %.3f s/step  %6.0f tokens/s  (%.2fx single-process)%n",
                local, tokens / local, local / single);
        out.printf(Locale.ROOT, "  distributed: router JVM + 2 expert JVMs, UDP       : %.3f s/step  %6.0f tokens/s  (%.2fx colocated, %.2fx single-process)%n",
                cluster, tokens / cluster, cluster / local, cluster / single);
    }

    private static Path write(Path work, String name, String conf) throws IOException {
        Path file = work.resolve(name + ".conf");
        Files.writeString(file, conf + "run.name = " + name + "\n");
        return file;
    }

    private static List<Double> train(Path work, String name, String conf) throws IOException {
        return run(write(work, name, conf));
    }

    private static List<Double> run(Path file) throws IOException {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        RunConfig config = RunConfig.load(file, List.of());
        PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
        JobResult r = config.string("runtime.mode").equals("single-process") ? EncoderJob.run(config, out, false)
                : ExpertParallelJob.run(config, out, false);
        List<Double> seconds = new ArrayList<>();
        for (String line : Files.readAllLines(r.runDir().resolve("metrics.jsonl"))) seconds.add(JSON.readTree(line).get("seconds").asDouble());
        return seconds;
    }

    private static double meanTokens(Path runDir) throws IOException {
        return Files.readAllLines(runDir.resolve("metrics.jsonl")).stream()
                .mapToDouble(l -> {
                    try {
                        return JSON.readTree(l).get("tokens").asDouble();
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }).average().orElse(0);
    }

    /** The median step time after the first two (warm-up) steps. */
    private static double median(List<Double> seconds) {
        return Machine.median(seconds.subList(Math.min(2, seconds.size() - 1), seconds.size()).stream().mapToDouble(Double::doubleValue).toArray());
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }
}
