package dev.moelora.cluster.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.moelora.cluster.checkpoint.CheckpointSchedule;
import dev.moelora.cluster.checkpoint.CheckpointStore;
import dev.moelora.cluster.checkpoint.FinalAdapter;
import dev.moelora.cluster.checkpoint.RunCheckpoints;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.AdapterJson;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.job.Preemption;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.cluster.observe.RunRecorder;
import dev.moelora.cluster.setup.RunSetup;
import dev.moelora.cluster.setup.TaskData;
import dev.moelora.model.data.Task;
import dev.moelora.model.train.Evaluation;
import dev.moelora.model.train.ExampleOrder;
import dev.moelora.model.train.ExampleSampler;
import dev.moelora.model.instruct.InstructionTrainer;
import dev.moelora.cluster.setup.InstructionData;
import dev.moelora.cluster.job.InstructionEvaluation;
import com.fasterxml.jackson.databind.JsonNode;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import dev.moelora.proto.checkpoint.CheckpointManifest;
import dev.moelora.proto.control.ExpertPlacement;
import dev.moelora.proto.control.FileDigest;
import dev.moelora.proto.frame.ChannelSettings;
import dev.moelora.proto.frame.DataPlane;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.Supplier;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * A MoELoRA training run on the expert-parallel runtime, end to end: in this JVM over Aeron IPC
 * ({@code runtime.mode = local}) or as the coordinator of a Pekko Cluster whose router and expert
 * nodes were started with {@code moelora node} ({@code runtime.mode = cluster}). It writes what
 * the single-process job writes, in the same formats: progress, metrics.jsonl, routing.jsonl,
 * checkpoints (every node writes its own files into {@code checkpoint.dir}, which must be storage
 * every node sees), the final adapter made from the last checkpoint, eval.md/json; and what only
 * this runtime has: nodes.jsonl, events.jsonl (placements, failures, recoveries, checkpoints) and
 * placement.json. A run starting again on the same run.name with {@code run.resume-from = latest}
 * (a coordinator restarted after it died) continues from the newest valid checkpoint.
 */
public final class ExpertParallelJob {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ExpertParallelJob() {}

    /** The Pekko settings of a moelora JVM: our actors' file over Pekko's reference. */
    public static Config actorSettings() {
        return ConfigFactory.parseResources("moelora-actors.conf").withFallback(ConfigFactory.load()).resolve();
    }

    public static JobResult run(RunConfig config, PrintStream out, boolean terminal) throws IOException {
        return run(config, out, terminal, () -> Preemption.install(config.duration("checkpoint.preemption-timeout")));
    }

    /** The run, with {@code preemption} deciding when it stops early at a checkpoint (this JVM's SIGTERM, or a test's condition). */
    public static JobResult run(RunConfig config, PrintStream out, boolean terminal, Supplier<Preemption> preemption) throws IOException {
        long t0 = System.nanoTime();
        Path runDir = RunDirectory.create(config).toAbsolutePath();
        String mode = config.string("runtime.mode");
        TrainConfig train = RunSetup.trainConfig(config);
        boolean decoder = config.string("model.name").equals("llama");
        List<Task> tasks = decoder ? List.of() : TaskData.load(config);
        // the coordinator draws every micro-batch from the same order the single-process job reads
        ExampleOrder sampler = decoder
                ? InstructionTrainer.order(InstructionData.load(config).sequences(), train, config.bool("data.instructions.group-by-length"))
                : new ExampleSampler(tasks, train.seed());
        out.printf(Locale.ROOT, "moelora train (expert-parallel, runtime %s) -> %s%n", mode, runDir);
        out.printf(Locale.ROOT, "  training   : %d steps x %d examples x %d micro-batches over %d router(s), %d expert node(s)%n",
                train.steps(), train.batchSize(), train.gradAccum(), config.integer("runtime.routers"), config.integer("runtime.expert-nodes"));

        ExpertParallelRun.Outcome outcome;
        RunReporter reporter;
        try (RunRecorder records = RunDirectory.recorders(runDir); Preemption preempt = preemption.get()) {
            reporter = new RunReporter(runDir, records, out, terminal);
            java.util.function.Consumer<String> log = message -> {
                out.println("  checkpoint : " + message);
                records.record(RecordStream.EVENTS, Records.event("checkpoint-invalid", 0).put("reason", message));
            };
            CheckpointStore store = RunCheckpoints.store(config, runDir, log);
            Optional<CheckpointStore.Loaded> from = RunCheckpoints.resumeFrom(config, store, log);
            from.ifPresent(c -> out.printf(Locale.ROOT, "  resuming   : %s (step %d)%n", c.dir(), c.step()));
            records.rewind(from.map(c -> (int) c.step()).orElse(0)); // the records stop where the run starts again
            Checkpoints checkpoints = new Checkpoints(config, runDir.getFileName().toString(), store, from, log);
            outcome = switch (mode) {
                case "local" -> local(config, sampler, runDir, reporter, checkpoints, preempt);
                case "cluster" -> ClusterCoordinator.run(config, sampler, runDir, reporter, checkpoints, out, preempt);
                default -> throw new IllegalArgumentException("runtime.mode must be local or cluster for the expert-parallel job; got '"
                        + mode + "'");
            };
            if (outcome.preempted()) {
                out.printf(Locale.ROOT, "preempted at step %d: checkpoint %s; resume with run.resume-from = latest (same run.name)%n",
                        reporter.steps().size(), outcome.finalCheckpoint());
                preempt.done();
                return result(runDir, outcome, List.of(), reporter, mode, config, t0);
            }
        }
        CheckpointStore.Loaded last = CheckpointStore.open(outcome.finalCheckpoint());
        Path adapter = FinalAdapter.write(last, runDir.resolve("adapter"),
                AdapterJson.of(config, outcome.adapterDescription(), outcome.baseModel(), decoder ? "CAUSAL_LM" : null, tasks));
        out.println("  adapter    : " + adapter + " (from " + last.dir() + ")");
        JsonNode report = JSON.readTree(outcome.evaluationJson());
        List<Evaluation.TaskScore> scores = RunDirectory.scores(report);
        String table = decoder ? InstructionEvaluation.table(scores) : Evaluation.table(scores);
        out.print(table);
        // a decoder's report is the single-process job's eval.json (answer kinds, prompts too long); router 0 wrote predictions.jsonl
        RunDirectory.writeEvaluation(runDir, table, decoder ? report : RunDirectory.scoresJson(scores));
        return result(runDir, outcome, scores, reporter, mode, config, t0);
    }

    private static JobResult result(Path runDir, ExpertParallelRun.Outcome outcome, List<Evaluation.TaskScore> scores, RunReporter reporter,
                                    String mode, RunConfig config, long t0) {
        List<Trainer.StepMetrics> steps = reporter.steps();
        double seconds = steps.stream().mapToDouble(Trainer.StepMetrics::seconds).sum();
        long tokens = steps.stream().mapToLong(Trainer.StepMetrics::tokens).sum();
        double tps = seconds > 0 ? tokens / seconds : 0;
        System.out.flush();
        String restarts = outcome.restarts() > 0 ? ", " + outcome.restarts() + " recovery(ies)" : "";
        String adapter = outcome.adapterDescription() + " (expert-parallel, runtime " + mode + ", "
                + config.integer("runtime.expert-nodes") + " expert node(s)" + restarts + ")";
        double wall = (System.nanoTime() - t0) / 1e9;
        return new JobResult(runDir, adapter, scores, outcome.trainableParameters(), tps, seconds, wall,
                steps.stream().map(Trainer.StepMetrics::loss).toList());
    }

    /** The run's checkpoints over the store: the first restore is what run.resume-from named, every later one the newest valid. */
    private static final class Checkpoints implements ExpertParallelRun.Checkpoints {
        private final RunConfig config;
        private final String runName;
        private final CheckpointStore store;
        private final CheckpointSchedule schedule;
        private Optional<CheckpointStore.Loaded> first;
        private long lastCommit = System.nanoTime();

        Checkpoints(RunConfig config, String runName, CheckpointStore store, Optional<CheckpointStore.Loaded> from,
                    java.util.function.Consumer<String> log) {
            this.config = config;
            this.runName = runName;
            this.store = store;
            this.schedule = CheckpointSchedule.of(config);
            this.first = from;
        }

        @Override
        public Optional<ExpertParallelRun.RestorePoint> newestValid() {
            Optional<CheckpointStore.Loaded> found;
            if (first != null) {
                found = first;
                first = null;
            } else {
                try {
                    found = store.newestValid();
                } catch (IOException e) {
                    throw new UncheckedIOException(store.dir() + ": " + e.getMessage(), e);
                }
            }
            return found.map(c -> new ExpertParallelRun.RestorePoint(c.dir(), (int) c.step(), c.manifest().getCursor().getEpoch(),
                    c.manifest().getCursor().getPosition(), c.manifest().getFilesList().stream()
                    .map(f -> FileDigest.newBuilder().setName(f.getName()).setSize(f.getSize()).setSha256(f.getSha256()).build()).toList()));
        }

        @Override
        public boolean due(int step) {
            return schedule.due(step, Duration.ofNanos(System.nanoTime() - lastCommit));
        }

        @Override
        public Optional<Path> reuse(int step) {
            try {
                return store.reuse(step).map(CheckpointStore.Loaded::dir);
            } catch (IOException e) {
                throw new UncheckedIOException(store.dir() + ": " + e.getMessage(), e);
            }
        }

        @Override
        public Path directory(int step) {
            try {
                return store.begin(step);
            } catch (IOException e) {
                throw new UncheckedIOException(store.dir() + ": " + e.getMessage(), e);
            }
        }

        @Override
        public Path commit(int step, List<FileDigest> files, int epoch, int position, List<ExpertPlacement> placement) throws IOException {
            List<dev.moelora.model.checkpoint.FileDigest> digests = files.stream()
                    .map(f -> new dev.moelora.model.checkpoint.FileDigest(f.getName(), f.getSize(), f.getSha256())).toList();
            List<CheckpointManifest.ExpertPlacement> where = placement.stream().map(p -> CheckpointManifest.ExpertPlacement.newBuilder()
                    .setExpert(p.getExpert()).setNode(p.getNode()).setDevice(p.getDevice()).build()).toList();
            // every optimizer (the routers', each expert's) has taken one step per training step
            CheckpointStore.Loaded c = store.commit(RunCheckpoints.manifest(config, runName, step, epoch, position, digests, step, where));
            lastCommit = System.nanoTime();
            return c.dir();
        }
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

    /** Polls the preemption handle from the actors' side: a request becomes the run's Preempt at its next step boundary. */
    static final Duration PREEMPTION_POLL = Duration.ofMillis(200);

    private record PollPreemption() {}

    /** A child that tells the run to stop at its next boundary once {@code preemption} is requested. */
    static Behavior<Object> watching(Preemption preemption, ActorRef<ExpertParallelRun.Command> run) {
        return Behaviors.withTimers(timers -> {
            timers.startTimerWithFixedDelay(new PollPreemption(), PREEMPTION_POLL);
            return Behaviors.receiveMessage(m -> {
                if (!preemption.requested()) return Behaviors.same();
                run.tell(new ExpertParallelRun.Preempt());
                return Behaviors.stopped();
            });
        });
    }

    /** Routers and expert nodes as actors of this JVM, one embedded media driver, IPC channels. */
    static ExpertParallelRun.Outcome local(RunConfig config, ExampleOrder sampler, Path evaluationDir, ExpertParallelRun.Listener listener,
                                           ExpertParallelRun.Checkpoints checkpoints, Preemption preemption) throws IOException {
        ChannelSettings channels = new ChannelSettings((int) config.bytes("runtime.term-length"), config.integer("runtime.mtu"));
        CompletableFuture<ExpertParallelRun.Outcome> result = new CompletableFuture<>();
        List<AutoCloseable> planes = new ArrayList<>();
        try (DataPlane media = Nodes.media(config)) {
            Behavior<Void> root = Behaviors.setup(ctx -> {
                List<ExpertParallelRun.RouterNode> routers = new ArrayList<>();
                List<ExpertParallelRun.ExpertNode> experts = new ArrayList<>();
                for (int i = 0; i < config.integer("runtime.expert-nodes"); i++) {
                    var started = Nodes.experts(ctx, media, "experts-" + i, "experts-" + i, channels.ipc(), 1000 + i, config);
                    planes.add(started.dataPlane());
                    experts.add(started.handle());
                }
                for (int r = 0; r < config.integer("runtime.routers"); r++) {
                    var started = Nodes.router(ctx, media, "router-" + r, "router-" + r, channels.ipc(), 2000 + r, config);
                    planes.add(started.dataPlane());
                    routers.add(started.handle());
                }
                long runId = System.nanoTime();
                ActorRef<ExpertParallelRun.Command> run = ctx.spawn(ExpertParallelRun.create(config, runId, routers, experts, sampler, evaluationDir, listener,
                        checkpoints, node -> {}, result), "run");
                ctx.spawn(watching(preemption, run), "preemption");
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
