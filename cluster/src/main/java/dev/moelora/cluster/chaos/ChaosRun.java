package dev.moelora.cluster.chaos;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.runtime.ExpertParallelJob;
import dev.moelora.cluster.runtime.NodeProcesses;
import dev.moelora.cluster.single.EncoderJob;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The chaos run: a MoELoRA run on real JVMs of this machine (a router and expert nodes on
 * 127.0.0.1, the coordinator in this JVM) while a seeded stream of kills ({@code kill -9}) hits
 * random nodes at random steps, each victim replaced by a fresh JVM of its role; then the same run
 * uninterrupted, single-process; then the comparison: every step's loss and every final adapter
 * tensor, bit for bit. It prints what it did and the verdict, and fails when they differ. A command
 * (`moelora chaos`), not a test: the short version is a test of the suite.
 */
public final class ChaosRun {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a chaos run found. */
    public record Verdict(int steps, List<String> kills, int recoveries, boolean identical, String difference, double seconds) {}

    private ChaosRun() {}

    /**
     * @param expertNodes expert JVMs (the router is one more)
     * @param kills       kills over the run, at steps drawn from {@code seed}
     */
    public static Verdict run(Path work, int steps, int expertNodes, int kills, long seed, PrintStream out) throws Exception {
        long t0 = System.nanoTime();
        Files.createDirectories(work);
        int coordinator = NodeProcesses.freeTcpPort();
        Path file = work.resolve("chaos.conf");
        Files.writeString(file, settings(work, "chaos", steps) + String.join("\n", "runtime.mode = cluster", "runtime.routers = 1",
                "runtime.expert-nodes = " + expertNodes, "cluster.port = " + coordinator,
                "cluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + coordinator + "\"]") + "\n");
        SplittableRandom random = new SplittableRandom(seed);
        int[] at = new int[kills];
        int span = Math.max(1, (steps - 10) / kills);
        for (int k = 0; k < kills; k++) at[k] = 6 + k * span + random.nextInt(Math.max(1, span - 4));
        out.printf(Locale.ROOT, "chaos: %d steps on a router and %d expert JVMs; kills after steps %s (seed %d)%n", steps, expertNodes,
                Arrays.toString(at), seed);
        List<String> killed = new ArrayList<>();
        JobResult chaos;
        try (NodeProcesses nodes = new NodeProcesses(work)) {
            List<NodeProcesses.Node> live = new ArrayList<>();
            List<String> roles = new ArrayList<>();
            live.add(nodes.start(file, "router", "router-0", "1g"));
            roles.add("router");
            for (int i = 0; i < expertNodes; i++) {
                live.add(nodes.start(file, "expert", "expert-" + i, "768m"));
                roles.add("expert");
            }
            Path metrics = work.resolve("chaos/metrics.jsonl");
            Thread killer = new Thread(() -> {
                int started = live.size();
                try {
                    for (int step : at) {
                        while (lines(metrics) < step) Thread.sleep(50);
                        int victim = random.nextInt(live.size());
                        String role = roles.get(victim);
                        nodes.kill(live.get(victim));
                        String line = String.format(Locale.ROOT, "%s (data port %d) after step %d", role, live.get(victim).dataPort(), lines(metrics));
                        synchronized (killed) {
                            killed.add(line);
                        }
                        out.println("chaos: killed " + line);
                        live.set(victim, nodes.start(file, role, role + "-" + started++, role.equals("router") ? "1g" : "768m"));
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            }, "chaos-killer");
            killer.setDaemon(true);
            killer.start();
            chaos = nodes.whileAlive(Duration.ofMinutes(10 + steps / 5), () -> ExpertParallelJob.run(RunConfig.load(file, List.of()), quiet(), false));
            killer.interrupt();
        }
        int recoveries = 0;
        for (String line : Files.readAllLines(chaos.runDir().resolve("events.jsonl"))) {
            if (JSON.readTree(line).get("event").asText().equals("recovered")) recoveries++;
        }
        out.printf(Locale.ROOT, "chaos: finished after %d recoveries; now the same run uninterrupted, single-process%n", recoveries);
        Path reference = work.resolve("reference.conf");
        Files.writeString(reference, settings(work, "reference", steps));
        JobResult uninterrupted = EncoderJob.run(RunConfig.load(reference, List.of()), quiet(), false);
        String difference = compare(uninterrupted.runDir(), chaos.runDir(), steps);
        Verdict v = new Verdict(steps, List.copyOf(killed), recoveries, difference.isEmpty(), difference, (System.nanoTime() - t0) / 1e9);
        out.println(difference.isEmpty()
                ? String.format(Locale.ROOT, "chaos: IDENTICAL — %d kills, %d recoveries, every step's loss and every adapter tensor bit for bit (%.0f s)",
                        killed.size(), recoveries, v.seconds())
                : "chaos: DIFFERENT — " + difference);
        return v;
    }

    /** The run settings the chaos run and its reference share: tiny batches, so that a step takes well under a second. */
    public static String settings(Path work, String name, int steps) {
        return settings(work, name, steps, 1000);
    }

    /** The same, with {@code maxRestarts} roll-backs allowed (the suite's recovery tests allow a few). */
    public static String settings(Path work, String name, int steps, int maxRestarts) {
        return """
                adapter { type = moelora, experts = 4, expert-rank = 2 }
                data.generated { train-per-task = 24, test-per-task = 4 }
                data.max-length = 16
                train { steps = %d, batch-size = 2, eval-batch-size = 8, warmup-steps = 2 }
                checkpoint { every = 5, every-seconds = 0, keep-last = 2 }
                recovery { max-restarts = %d, wait-for-replacement = 60s, coordinator-wait = 120s }
                cluster.downing-after = 2s
                runtime { timeout = 90s, frame-timeout = 30s }
                dashboard.port = 0
                run { dir = "%s", name = %s }
                """.formatted(steps, maxRestarts, work.toString().replace("\\", "/"), name);
    }

    private static PrintStream quiet() {
        return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    }

    private static int lines(Path file) {
        try {
            return Files.exists(file) ? Files.readAllLines(file).size() : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** The first difference between two runs' per-step numbers and final adapters, or "" when there is none. */
    static String compare(Path expected, Path actual, int steps) throws IOException {
        List<String> e = Files.readAllLines(expected.resolve("metrics.jsonl")), a = Files.readAllLines(actual.resolve("metrics.jsonl"));
        if (e.size() != steps || a.size() != steps) return "metrics.jsonl has " + a.size() + " lines, the reference " + e.size() + ", expected " + steps;
        for (int i = 0; i < steps; i++) {
            JsonNode x = JSON.readTree(e.get(i)), y = JSON.readTree(a.get(i));
            for (String key : List.of("step", "loss", "aux_loss", "lr", "grad_norm", "tokens")) {
                if (x.get(key).asDouble() != y.get(key).asDouble()) return "step " + (i + 1) + " " + key + ": " + y.get(key) + " vs " + x.get(key);
            }
        }
        try (SafetensorsFile x = Safetensors.open(expected.resolve("adapter/adapter_model.safetensors"));
             SafetensorsFile y = Safetensors.open(actual.resolve("adapter/adapter_model.safetensors"))) {
            List<String> names = x.tensors().stream().map(SafetensorsFile.TensorInfo::name).sorted().toList();
            List<String> other = y.tensors().stream().map(SafetensorsFile.TensorInfo::name).sorted().toList();
            if (!names.equals(other)) return "the adapters hold other tensors: " + other + " vs " + names;
            for (String n : names) {
                if (!Arrays.equals(x.read(n).dup().data().asFloat(), y.read(n).dup().data().asFloat())) return "adapter tensor " + n + " differs";
            }
        }
        return "";
    }
}
