package dev.moelora.cluster.experiment;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigValueFactory;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.Job;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.job.Progress;
import dev.moelora.model.train.Evaluation;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * An experiment file: run settings every run shares (same data, seed and step budget), and an
 * {@code experiment} block naming the runs, each with its own overrides (usually the adapter).
 * Runs it through the coordinator and writes the comparison table.
 */
public final class Experiment {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Experiment() {}

    /** An experiment ready to run: its name, where it writes, and its runs in order. */
    public record Plan(String name, Path dir, List<Coordinator.RunSpec> runs) {}

    /** The runs of an experiment file (or of the built-in default experiment when file is null). */
    public static Plan load(Path file, List<String> overrides) {
        Config all = file == null
                ? ConfigFactory.parseResources(Experiment.class.getClassLoader(), "moelora-experiment.conf",
                        ConfigParseOptions.defaults().setAllowMissing(false))
                : RunConfig.parseFile(file);
        String origin = file == null ? "built-in moelora-experiment.conf" : file.toString();
        if (!all.hasPath("experiment.runs")) throw new IllegalArgumentException(origin + ": no experiment.runs list");
        String experimentName = all.hasPath("experiment.name") ? all.getString("experiment.name") : "experiment";
        Config shared = RunConfig.withOverrides(all.withoutPath("experiment"), overrides);
        Path dir = experimentDir(shared, experimentName);
        List<Coordinator.RunSpec> runs = new ArrayList<>();
        Set<String> names = new LinkedHashSet<>();
        List<? extends Config> entries;
        try {
            entries = all.getConfigList("experiment.runs");
        } catch (ConfigException e) {
            throw new IllegalArgumentException(origin + ": experiment.runs must be a list of objects: " + e.getMessage(), e);
        }
        for (int i = 0; i < entries.size(); i++) {
            Config run = entries.get(i);
            if (!run.hasPath("name")) throw new IllegalArgumentException(origin + ": experiment.runs[" + i + "] has no name");
            String name = run.getString("name");
            if (!names.add(name)) throw new IllegalArgumentException(origin + ": two runs are named '" + name + "'");
            // every run writes under <run.dir>/<experiment name>/<run name>
            Config settings = run.withoutPath("name").withFallback(shared)
                    .withValue("run.dir", ConfigValueFactory.fromAnyRef(dir.toString()))
                    .withValue("run.name", ConfigValueFactory.fromAnyRef(name));
            runs.add(new Coordinator.RunSpec(name, RunConfig.of(settings)));
        }
        if (runs.isEmpty()) throw new IllegalArgumentException(origin + ": experiment.runs is empty");
        return new Plan(experimentName, dir, runs);
    }

    /** Where an experiment writes: {@code <run.dir>/<experiment name>}. */
    public static Path experimentDir(Config shared, String name) {
        return Path.of(shared.hasPath("run.dir") ? shared.getString("run.dir") : "runs").resolve(name);
    }

    /** Runs every run through a coordinator actor and returns the outcomes in order. */
    public static List<TrainerActor.Reply> run(List<Coordinator.RunSpec> runs, Job job, PrintStream log) {
        Config pekko = ConfigFactory.parseResources(Experiment.class.getClassLoader(), "moelora-actors.conf").withFallback(ConfigFactory.load());
        ActorSystem<Coordinator.Command> system = ActorSystem.create(Coordinator.create(), "moelora", pekko);
        try {
            CompletionStage<Coordinator.ExperimentFinished> done = AskPattern.ask(system,
                    (org.apache.pekko.actor.typed.ActorRef<Coordinator.ExperimentFinished> reply) -> new Coordinator.RunExperiment(runs, job, log, reply),
                    Duration.ofDays(30), system.scheduler());
            return done.toCompletableFuture().join().outcomes();
        } finally {
            system.terminate();
        }
    }

    /** The comparison table (Markdown) and JSON, written to dir and returned as Markdown. */
    public static String report(List<TrainerActor.Reply> outcomes, Path dir) throws IOException {
        List<String> tasks = new ArrayList<>();
        for (TrainerActor.Reply r : outcomes) {
            if (r instanceof TrainerActor.Trained t) for (Evaluation.TaskScore s : t.result().scores()) if (!tasks.contains(s.task())) tasks.add(s.task());
        }
        StringBuilder md = new StringBuilder("| run | adapter | trainable params |");
        for (String t : tasks) md.append(' ').append(t).append(" |");
        md.append(" average | tokens/s | wall time |\n|---|---|---:|");
        md.append("---:|".repeat(tasks.size())).append("---:|---:|---:|\n");
        ArrayNode json = JSON.createArrayNode();
        for (TrainerActor.Reply r : outcomes) {
            ObjectNode o = json.addObject();
            if (r instanceof TrainerActor.Trained t) {
                JobResult res = t.result();
                o.put("run", t.name());
                o.put("adapter", res.adapter());
                o.put("trainable_parameters", res.trainableParameters());
                ObjectNode acc = o.putObject("accuracy");
                md.append(String.format(Locale.ROOT, "| %s | %s | %,d |", t.name(), res.adapter(), res.trainableParameters()));
                for (String task : tasks) {
                    var score = res.scores().stream().filter(s -> s.task().equals(task)).findFirst();
                    md.append(score.map(s -> String.format(Locale.ROOT, " %.3f |", s.accuracy())).orElse(" – |"));
                    score.ifPresent(s -> acc.put(task, s.accuracy()));
                }
                double avg = Evaluation.average(res.scores());
                o.put("average", avg);
                o.put("tokens_per_s", res.tokensPerSecond());
                o.put("wall_seconds", res.wallSeconds());
                md.append(String.format(Locale.ROOT, " %.3f | %.0f | %s |%n", avg, res.tokensPerSecond(),
                        Progress.duration(res.wallSeconds())));
            } else if (r instanceof TrainerActor.TrainingFailed f) {
                o.put("run", f.name());
                o.put("error", f.error());
                md.append("| ").append(f.name()).append(" | failed: ").append(f.error().replace('|', '/')).append(" | |")
                        .append(" |".repeat(tasks.size())).append(" | | |\n");
            }
        }
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("comparison.md"), md.toString());
        Files.writeString(dir.resolve("comparison.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json));
        return md.toString();
    }
}
