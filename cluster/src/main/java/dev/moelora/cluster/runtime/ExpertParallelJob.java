package dev.moelora.cluster.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.moelora.cluster.job.Progress;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.setup.RunSetup;
import dev.moelora.cluster.setup.TaskData;
import dev.moelora.cluster.job.AdapterJson;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.model.train.AdapterStore;
import java.nio.file.Files;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.observe.JsonlRecorder;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.cluster.observe.RunRecorder;
import dev.moelora.model.data.Task;
import dev.moelora.model.train.Evaluation;
import dev.moelora.model.train.ExampleSampler;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import dev.moelora.proto.frame.ChannelSettings;
import dev.moelora.proto.frame.DataPlane;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * A MoELoRA training run on the expert-parallel runtime, end to end: in this JVM over Aeron IPC
 * ({@code runtime.mode = local}) or as the coordinator of a Pekko Cluster whose router and expert
 * nodes were started with {@code moelora node} ({@code runtime.mode = cluster}). It writes what
 * the single-process job writes: progress, metrics.jsonl, eval.md/json, and the trained tensors
 * (each node writes its own: router-0.safetensors, expert-E.safetensors under the run's adapter
 * directory, on its own file system).
 */
public final class ExpertParallelJob {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ExpertParallelJob() {}

    /** The Pekko settings of a moelora JVM: our actors' file over Pekko's reference. */
    public static Config actorSettings() {
        return ConfigFactory.parseResources("moelora-actors.conf").withFallback(ConfigFactory.load()).resolve();
    }

    public static JobResult run(RunConfig config, PrintStream out, boolean terminal) throws IOException {
        long t0 = System.nanoTime();
        Path runDir = RunDirectory.create(config).toAbsolutePath();
        String mode = config.string("runtime.mode");
        TrainConfig train = RunSetup.trainConfig(config);
        List<Task> tasks = TaskData.load(config);
        ExampleSampler sampler = new ExampleSampler(tasks, train.seed());
        out.printf(Locale.ROOT, "moelora train (expert-parallel, runtime %s) -> %s%n", mode, runDir);
        out.printf(Locale.ROOT, "  training   : %d steps x %d examples x %d micro-batches over %d router(s), %d expert node(s)%n",
                train.steps(), train.batchSize(), train.gradAccum(), config.integer("runtime.routers"), config.integer("runtime.expert-nodes"));

        Progress progress = new Progress(out, terminal, 0);
        List<Double> losses = new ArrayList<>();
        double[] seconds = {0};
        long[] tokens = {0};
        ExpertParallelRun.Outcome outcome;
        try (RunRecorder records = new JsonlRecorder(runDir)) {
            ExpertParallelRun.Listener listener = new ExpertParallelRun.Listener() {
                @Override public void onStart(List<String> placement) {
                    for (String line : placement) out.println("  placement  : " + line);
                }

                @Override public void onStep(Trainer.StepMetrics m) {
                    losses.add(m.loss());
                    seconds[0] += m.seconds();
                    tokens[0] += m.tokens();
                    records.record(RecordStream.METRICS, Records.metrics(m));
                    progress.onStep(m);
                }
            };
            String save = runDir.resolve("adapter").toString();
            outcome = switch (mode) {
                case "local" -> local(config, sampler, save, listener);
                case "cluster" -> ClusterCoordinator.run(config, sampler, save, listener, out);
                default -> throw new IllegalArgumentException("runtime.mode must be local or cluster for the expert-parallel job; got '"
                        + mode + "'");
            };
        }
        List<Evaluation.TaskScore> scores = RunDirectory.scores(JSON.readTree(outcome.evaluationJson()));
        String table = Evaluation.table(scores);
        out.print(table);
        RunDirectory.writeEvaluation(runDir, table, RunDirectory.scoresJson(scores));
        Path adapterConfig = runDir.resolve("adapter").resolve(AdapterStore.CONFIG);
        Files.createDirectories(adapterConfig.getParent());
        Files.writeString(adapterConfig, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(
                AdapterJson.of(config, outcome.adapterDescription(), outcome.baseModel(), null, tasks)));
        for (String f : outcome.files()) out.println("  saved      : " + f);
        out.println("  saved      : " + adapterConfig);
        double tps = seconds[0] > 0 ? tokens[0] / seconds[0] : 0;
        out.printf(Locale.ROOT, "%,.0f training tokens/s; total %s%n", tps, Progress.duration((System.nanoTime() - t0) / 1e9));
        String adapter = outcome.adapterDescription() + " (expert-parallel, runtime " + mode + ", "
                + config.integer("runtime.expert-nodes") + " expert node(s))";
        return new JobResult(runDir, adapter, scores, outcome.trainableParameters(), tps, seconds[0], (System.nanoTime() - t0) / 1e9, losses);
    }

    /** The run's outcome, or its failure as an exception with the run's own message. */
    static ExpertParallelRun.Outcome outcome(CompletableFuture<ExpertParallelRun.Outcome> result) {
        try {
            return result.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause().getMessage(), e.getCause());
        }
    }

    /** Routers and expert nodes as actors of this JVM, one embedded media driver, IPC channels. */
    static ExpertParallelRun.Outcome local(RunConfig config, ExampleSampler sampler, String save, ExpertParallelRun.Listener listener)
            throws IOException {
        ChannelSettings channels = new ChannelSettings((int) config.bytes("runtime.term-length"), config.integer("runtime.mtu"));
        CompletableFuture<ExpertParallelRun.Outcome> result = new CompletableFuture<>();
        List<AutoCloseable> planes = new ArrayList<>();
        try (DataPlane media = Nodes.media(config)) {
            Behavior<Void> root = Behaviors.setup(ctx -> {
                List<ExpertParallelRun.RouterNode> routers = new ArrayList<>();
                List<ExpertParallelRun.ExpertNode> experts = new ArrayList<>();
                for (int i = 0; i < config.integer("runtime.expert-nodes"); i++) {
                    var started = Nodes.experts(ctx, media, "experts-" + i, channels.ipc(), 1000 + i, config);
                    planes.add(started.dataPlane());
                    experts.add(started.handle());
                }
                for (int r = 0; r < config.integer("runtime.routers"); r++) {
                    var started = Nodes.router(ctx, media, "router-" + r, channels.ipc(), 2000 + r, config);
                    planes.add(started.dataPlane());
                    routers.add(started.handle());
                }
                long runId = System.nanoTime();
                ctx.spawn(ExpertParallelRun.create(config, runId, routers, experts, sampler, save, listener, result), "run");
                return Behaviors.empty();
            });
            ActorSystem<Void> system = ActorSystem.create(root, "moelora", actorSettings());
            try {
                return outcome(result);
            } finally {
                ClusterNode.stop(system, 30);
                Nodes.closeAll(planes);
            }
        }
    }
}
