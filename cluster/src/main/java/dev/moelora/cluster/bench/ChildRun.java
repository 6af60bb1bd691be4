package dev.moelora.cluster.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.runtime.ParentWatch;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The child JVM of {@link TimedRuns#inChildJvm}: runs one config's training in this JVM
 * (single-process, or the expert-parallel runtime in this JVM), writes what the benchmark reads
 * (this JVM's pid, each step's seconds and real tokens) as JSON to the result file, and exits: the
 * run's native ND4J buffers end with it instead of piling up in the benchmark's JVM. It stops
 * when the benchmark's JVM is gone. It never judges a figure.
 *
 * <p>Arguments: the config file, the result file, the benchmark's pid.
 */
public final class ChildRun {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ChildRun() {}

    public static void main(String[] args) {
        try {
            if (args.length != 3) throw new IllegalArgumentException("usage: ChildRun CONFIG RESULT PARENT_PID; got " + List.of(args));
            Path config = Path.of(args[0]);
            // as on SIGTERM: the run checkpoints at its next step boundary and the JVM exits
            ParentWatch.watch(Long.parseLong(args[2]), System.out,
                    RunConfig.load(config, List.of()).duration("checkpoint.preemption-timeout").plus(ParentWatch.GRACE), () -> System.exit(1));
            record(config, Path.of(args[1]), System.out);
        } catch (Exception | Error e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.exit(0); // whatever threads the run left (ND4J's, Aeron's) end with the JVM
    }

    /** Runs {@code config} in this JVM, its output on {@code out}, and writes its result to {@code result}. */
    static void record(Path config, Path result, PrintStream out) throws IOException {
        TimedRuns.Steps steps = TimedRuns.run(config, out);
        ObjectNode json = JSON.createObjectNode().put("pid", ProcessHandle.current().pid());
        var seconds = json.putArray("seconds");
        var tokens = json.putArray("tokens");
        for (int i = 0; i < steps.seconds().length; i++) {
            seconds.add(steps.seconds()[i]);
            tokens.add(steps.tokens()[i]);
        }
        Files.writeString(result, JSON.writeValueAsString(json) + "\n");
    }

    /** What {@link #record} wrote. */
    static TimedRuns.Steps read(Path result) throws IOException {
        var json = JSON.readTree(result.toFile());
        int n = json.get("seconds").size();
        double[] seconds = new double[n], tokens = new double[n];
        for (int i = 0; i < n; i++) {
            seconds[i] = json.get("seconds").get(i).asDouble();
            tokens[i] = json.get("tokens").get(i).asDouble();
        }
        return new TimedRuns.Steps(seconds, tokens);
    }
}
