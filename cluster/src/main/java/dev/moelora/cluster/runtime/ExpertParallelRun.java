package dev.moelora.cluster.runtime;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.setup.RunSetup;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.LrSchedule;
import dev.moelora.model.train.ExampleOrder;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import dev.moelora.proto.control.Abandon;
import dev.moelora.proto.control.ApplyUpdate;
import dev.moelora.proto.control.Checkpoint;
import dev.moelora.proto.control.CoordinatorEvent;
import dev.moelora.proto.control.DataEndpoint;
import dev.moelora.proto.control.Evaluate;
import dev.moelora.proto.control.ExpertPlacement;
import dev.moelora.proto.control.ExpertRequest;
import dev.moelora.proto.control.FileDigest;
import dev.moelora.proto.control.InitExperts;
import dev.moelora.proto.control.InitRouter;
import dev.moelora.proto.control.ModuleRouting;
import dev.moelora.proto.control.NodeStats;
import dev.moelora.proto.control.ParameterNorm;
import dev.moelora.proto.control.ReduceGradients;
import dev.moelora.proto.control.Restore;
import dev.moelora.proto.control.RouterReady;
import dev.moelora.proto.control.RouterRequest;
import dev.moelora.proto.control.RunMicroBatch;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Coordinates one MoELoRA run of the expert-parallel runtime as a state machine of Pekko Typed
 * phases, one {@code Behavior} each: {@link #initialising} (routers, then expert nodes, then the
 * checkpoint they restore), {@link #stepping} (the micro-batches on the routers, reduce on every
 * node, the global gradient norm summed in the single-process parameter order, apply everywhere;
 * DESIGN.md, "One MoELoRA training step"), {@link #checkpointing} (every node writes its files,
 * then the manifest is committed), {@link #finishing} (a last checkpoint and router 0's
 * evaluation) and {@link #recovering}. Every scatter/gather is a {@link NodeRound} child with one
 * timeout.
 *
 * <p>Recovery is roll-back, not repair: when a node is lost (Pekko Cluster says so), a round times
 * out or a node answers with a failure, the run abandons the step, drops the nodes it suspects,
 * waits up to {@code recovery.wait-for-replacement} for a node to take a lost one's place,
 * re-places the experts over the nodes it has, re-initialises every node and restores the newest
 * valid checkpoint (or starts from step 0 when there is none). Every step is deterministic, so the
 * recovered run equals the uninterrupted one bit for bit. {@code recovery.max-restarts} bounds it.
 * A preemption request ends the run at the next step boundary with a checkpoint.
 *
 * <p>It draws the batches from the same sampler as the single-process trainer and sums the losses
 * in micro-batch order, so its step metrics are the reference's. It computes nothing heavy and
 * holds no tensor.
 */
public final class ExpertParallelRun {
    public sealed interface Command permits NodeLost, NodeJoined, Preempt, ReplacementWaitOver, NodeRound.Outcome {}

    /** A node hosting part of the run left the cluster or became unreachable. */
    public record NodeLost(String node, String why) implements Command {}

    /** A router or expert node announced itself after the run started: a replacement for a lost one. */
    public record NodeJoined(Node node) implements Command {}

    /** Stop at the next step boundary with a checkpoint (SIGTERM: Slurm, Kubernetes). */
    public record Preempt() implements Command {}

    private record ReplacementWaitOver(long attempt) implements Command {}

    /** A router or an expert node as the coordinator knows it. */
    public sealed interface Node {
        String name();

        DataEndpoint endpoint();
    }

    public record RouterNode(String name, ActorRef<RouterRequest> ref, DataEndpoint endpoint) implements Node {}

    public record ExpertNode(String name, ActorRef<ExpertRequest> ref, DataEndpoint endpoint, int devices) implements Node {}

    /** What the run reports as it goes: the job turns it into records, progress and files. */
    public interface Listener {
        /** The experts were placed (at the start and after every recovery). */
        void onPlacement(List<ExpertPlacement> placement, List<Node> nodes);

        void onStep(Trainer.StepMetrics metrics, List<ModuleRouting> routing, Map<String, NodeStats> nodes);

        /** An event of the run's life (docs/records.md, events.jsonl). */
        void onEvent(String event, int step, String node, String reason, String checkpoint, double seconds);

        /** The steps after {@code step} are computed again (a recovery restored that step's checkpoint). */
        void onRewind(int step);
    }

    /** Where the run keeps its checkpoints: implemented over the checkpoint store by the job. */
    public interface Checkpoints {
        /** The newest valid checkpoint to restore, or empty to start from step 0; each invalid one is reported by name. */
        Optional<RestorePoint> newestValid();

        /** Whether a checkpoint is due now that {@code step} steps are done. */
        boolean due(int step);

        /**
         * The directory of a complete checkpoint of {@code step} that verifies, made latest: it is not
         * written again (a resumed run reaching a step it checkpointed before, or a preemption right
         * after a scheduled checkpoint); empty when the nodes must write one.
         */
        Optional<Path> reuse(int step);

        /** The directory the nodes write the checkpoint of {@code step} into (storage every node sees). */
        Path directory(int step);

        /** Commits the checkpoint once every node has written its files: the manifest, then latest. */
        Path commit(int step, List<FileDigest> files, int epoch, int position, List<ExpertPlacement> placement) throws java.io.IOException;
    }

    /** A checkpoint to continue from: its directory, step, data cursor and files. */
    public record RestorePoint(Path directory, int step, int epoch, int position, List<FileDigest> files) {}

    /**
     * What a finished run leaves: every step's metrics, router 0's evaluation (JSON), the final
     * checkpoint's directory, where the experts were at the end, the adapter as router 0 described
     * it, and whether it stopped early for a preemption.
     */
    public record Outcome(List<Trainer.StepMetrics> steps, String evaluationJson, Path finalCheckpoint, List<ExpertPlacement> placement,
                          String baseModel, String adapterDescription, long trainableParameters, boolean preempted, int restarts) {}

    /** How the run drops a node it no longer trusts (Pekko Cluster's downing); a no-op within one JVM. */
    public interface Membership {
        void down(String node);
    }

    private final ActorContext<Command> ctx;
    private final TimerScheduler<Command> timers;
    private final RunConfig config;
    private final long runIdBase;
    private final Listener listener;
    private final Checkpoints checkpoints;
    private final Membership membership;
    private final CompletableFuture<Outcome> result;
    private final Duration timeout, replacementWait;
    private final int maxRestarts;
    private final TrainConfig train;
    private final ExampleOrder sampler;
    private final Path evaluationDir;
    private final LrSchedule schedule;

    private final List<RouterNode> routers;
    private final List<ExpertNode> experts;
    private final List<Node> spares = new ArrayList<>();
    private List<ExpertPlacement> placement = List.of();
    private RouterReady ready;
    private long round;
    private ActorRef<NodeRound.Message> inFlight;
    private long attempt;
    private int restarts;
    private int step;
    private boolean preempt;
    private long recoveringSince;     // System.nanoTime() when the recovery in progress began; 0 when none is
    private Path lastCheckpoint;
    private long stepStart;
    private double gradNorm, lr;
    private List<CoordinatorEvent> microBatches = List.of();
    private final List<Trainer.StepMetrics> steps = new ArrayList<>();

    private ExpertParallelRun(ActorContext<Command> ctx, TimerScheduler<Command> timers, RunConfig config, long runId,
                              List<RouterNode> routers, List<ExpertNode> experts, ExampleOrder sampler, Path evaluationDir, Listener listener,
                              Checkpoints checkpoints, Membership membership, CompletableFuture<Outcome> result) {
        this.evaluationDir = evaluationDir;
        this.ctx = ctx;
        this.timers = timers;
        this.config = config;
        this.runIdBase = runId;
        this.routers = new ArrayList<>(routers);
        this.experts = new ArrayList<>(experts);
        this.listener = listener;
        this.checkpoints = checkpoints;
        this.membership = membership;
        this.result = result;
        this.timeout = config.duration("runtime.timeout");
        this.replacementWait = config.duration("recovery.wait-for-replacement");
        this.maxRestarts = config.integer("recovery.max-restarts");
        this.train = RunSetup.trainConfig(config);
        this.sampler = sampler;
        this.schedule = train.schedule();
    }

    /**
     * @param runId   the run's id on the wire; each (re)initialisation uses the next one, so frames of
     *                an abandoned attempt are dropped as an unknown run
     * @param sampler       the order of the run's training examples, numbered as the routers number them
     * @param evaluationDir where router 0 writes what its evaluation does not answer with (a decoder's predictions)
     */
    public static Behavior<Command> create(RunConfig config, long runId, List<RouterNode> routers, List<ExpertNode> experts,
                                           ExampleOrder sampler, Path evaluationDir, Listener listener, Checkpoints checkpoints,
                                           Membership membership, CompletableFuture<Outcome> result) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new ExpertParallelRun(ctx, timers, config, runId, routers, experts, sampler, evaluationDir, listener, checkpoints, membership,
                        result).begin()));
    }

    private Behavior<Command> begin() {
        if (routers.isEmpty()) return fail("no router");
        if (train.gradAccum() < routers.size()) {
            return fail("train.grad-accum = " + train.gradAccum() + " micro-batches per step cannot feed " + routers.size()
                    + " routers (each router runs at least one)");
        }
        return initialising();
    }

    // ---- rounds ---------------------------------------------------------------------------------------------------

    private NodeRound.Target router(RouterNode r, int answers, Function<RouterRequest.Builder, RouterRequest.Builder> request) {
        return new NodeRound.Target(r.name(), answers, replyTo -> r.ref().tell(request.apply(RouterRequest.newBuilder().setReplyTo(replyTo)).build()));
    }

    private NodeRound.Target expert(ExpertNode n, Function<ExpertRequest.Builder, ExpertRequest.Builder> request) {
        return new NodeRound.Target(n.name(), 1, replyTo -> n.ref().tell(request.apply(ExpertRequest.newBuilder().setReplyTo(replyTo)).build()));
    }

    /** Starts a round; its outcome comes back as a {@link NodeRound.Outcome} carrying the returned id. */
    private long gather(String what, List<NodeRound.Target> targets) {
        round++;
        inFlight = ctx.spawn(NodeRound.create(what, targets, timeout, ctx.getSelf(), round), "round-" + round);
        return round;
    }

    /**
     * The behaviour of a phase waiting for round {@code id}: {@code next} on its answers; a failure,
     * a lost node or a preemption as the run handles them in every phase.
     */
    private Behavior<Command> awaiting(long id, Function<List<CoordinatorEvent>, Behavior<Command>> next) {
        return Behaviors.receive(Command.class)
                .onMessage(NodeRound.Done.class, d -> d.round() != id ? Behaviors.same() : guarded(() -> next.apply(d.answers())))
                .onMessage(NodeRound.Failed.class, f -> f.round() != id ? Behaviors.same()
                        : recovering(f.reason(), f.answered() ? List.of() : f.suspects()))
                .onMessage(NodeLost.class, n -> isMember(n.node()) ? recovering("node " + n.node() + " lost (" + n.why() + ")", List.of(n.node()))
                        : Behaviors.same())
                .onMessage(NodeJoined.class, j -> {
                    spares.add(j.node());
                    listener.onEvent("node-up", step, j.node().name(), "joined as a spare", "", 0);
                    return Behaviors.same();
                })
                .onMessage(Preempt.class, p -> {
                    preempt = true;
                    return Behaviors.same();
                })
                .onMessage(ReplacementWaitOver.class, w -> Behaviors.same())
                .build();
    }

    private Behavior<Command> guarded(java.util.function.Supplier<Behavior<Command>> next) {
        try {
            return next.get();
        } catch (RuntimeException e) {
            return fail(e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    private boolean isMember(String node) {
        return routers.stream().anyMatch(r -> r.name().equals(node)) || experts.stream().anyMatch(e -> e.name().equals(node));
    }

    // ---- initialising: routers, experts, restore --------------------------------------------------------------------

    private Behavior<Command> initialising() {
        attempt++;
        long runId = runIdBase + attempt;
        try {
            List<Placement.Node> nodes = experts.stream().map(n -> new Placement.Node(n.name(), n.endpoint(), n.devices())).toList();
            placement = Placement.assign(config.integer("adapter.experts"), nodes, attempt == 1 ? config.strings("runtime.placement") : List.of());
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        List<Node> all = new ArrayList<>(routers);
        all.addAll(experts);
        listener.onPlacement(placement, all);
        InitRouter.Builder init = InitRouter.newBuilder().setRunId(runId).setConfig(config.render()).addAllPlacement(placement);
        for (RouterNode r : routers) init.addRouters(r.endpoint());
        List<NodeRound.Target> targets = new ArrayList<>();
        for (int r = 0; r < routers.size(); r++) {
            int index = r;
            targets.add(router(routers.get(r), 1, b -> b.setInit(init.clone().setRouter(index))));
        }
        return awaiting(gather("router init", targets), answers -> {
            ready = null;
            for (CoordinatorEvent e : answers) {
                if (!e.hasRouterReady()) throw new IllegalStateException("router init: unexpected answer from " + e.getFrom());
                if (ready == null || e.getRouterReady().getRouter() == 0) ready = e.getRouterReady();
            }
            return initialisingExperts(runId);
        });
    }

    private Behavior<Command> initialisingExperts(long runId) {
        List<NodeRound.Target> targets = new ArrayList<>();
        for (ExpertNode n : experts) {
            InitExperts.Builder init = InitExperts.newBuilder().setRunId(runId).setConfig(config.render())
                    .addAllModules(ready.getModulesList()).setMicroBatches(train.gradAccum());
            for (RouterNode r : routers) init.addRouters(r.endpoint());
            for (ExpertPlacement p : placement) if (p.getNode().equals(n.name())) init.addHosted(p);
            targets.add(expert(n, b -> b.setInit(init)));
        }
        return awaiting(gather("expert init", targets), answers -> restoring());
    }

    /** Restores the newest valid checkpoint on every node, or starts from step 0 when there is none. */
    private Behavior<Command> restoring() {
        Optional<RestorePoint> point = checkpoints.newestValid();
        if (point.isEmpty()) {
            if (step > 0) listener.onRewind(0);
            step = 0;
            sampler.seek(0, 0);
            lastCheckpoint = null;
            steps.clear();
            recovered("no checkpoint yet: from step 0");
            return stepping();
        }
        RestorePoint p = point.get();
        Restore restore = Restore.newBuilder().setStep(p.step()).setDirectory(p.directory().toString()).addAllFiles(p.files()).build();
        List<NodeRound.Target> targets = new ArrayList<>();
        for (RouterNode r : routers) targets.add(router(r, 1, b -> b.setRestore(restore)));
        for (ExpertNode n : experts) targets.add(expert(n, b -> b.setRestore(restore)));
        return awaiting(gather("restore", targets), answers -> {
            if (step != p.step() || attempt > 1) listener.onRewind(p.step());
            step = p.step();
            sampler.seek(p.epoch(), p.position());
            lastCheckpoint = p.directory();
            steps.removeIf(m -> m.step() > p.step());
            if (attempt == 1) listener.onEvent("resumed", step, "", "", p.directory().toString(), 0);
            recovered(p.directory().toString());
            return stepping();
        });
    }

    /** Ends the recovery in progress, if any: which nodes the run goes on with, which checkpoint, how long it took. */
    private void recovered(String checkpoint) {
        if (recoveringSince == 0) return;
        listener.onEvent("recovered", step, "", "on " + routers.size() + " router(s) and " + experts.size() + " expert node(s)",
                checkpoint, (System.nanoTime() - recoveringSince) / 1e9);
        recoveringSince = 0;
    }

    // ---- stepping: micro-batches, reduce, apply ---------------------------------------------------------------------

    private Behavior<Command> stepping() {
        if (preempt) return checkpointing(true);
        if (step >= train.steps()) return finishing();
        stepStart = System.nanoTime();
        int m = train.gradAccum();
        List<NodeRound.Target> targets = new ArrayList<>();
        for (int micro = 0; micro < m; micro++) {
            RunMicroBatch.Builder run = RunMicroBatch.newBuilder().setStep(step).setMicroBatch(micro).setMicroBatches(m);
            for (int i : sampler.nextIndices(train.batchSize())) run.addExamples(i);
            targets.add(router(routers.get(micro % routers.size()), 1, b -> b.setRun(run)));
        }
        return awaiting(gather("micro-batches of step " + (step + 1), targets), answers -> {
            for (CoordinatorEvent e : answers) {
                if (!e.hasMicroBatchDone()) throw new IllegalStateException("micro-batches: unexpected answer from " + e.getFrom());
            }
            List<CoordinatorEvent> sorted = new ArrayList<>(answers);
            sorted.sort(Comparator.comparingInt(e -> e.getMicroBatchDone().getMicroBatch()));
            microBatches = sorted;
            return reducing();
        });
    }

    private Behavior<Command> reducing() {
        ReduceGradients reduce = ReduceGradients.newBuilder().setStep(step).setMicroBatches(train.gradAccum()).build();
        List<NodeRound.Target> targets = new ArrayList<>();
        for (RouterNode r : routers) targets.add(router(r, 1, b -> b.setReduce(reduce)));
        for (ExpertNode n : experts) targets.add(expert(n, b -> b.setReduce(reduce)));
        return awaiting(gather("reduce of step " + (step + 1), targets), answers -> {
            Map<String, Double> norms = new HashMap<>();
            for (CoordinatorEvent e : answers) {
                if (!e.hasReduced()) throw new IllegalStateException("reduce: unexpected answer from " + e.getFrom());
                for (ParameterNorm n : e.getReduced().getNormsList()) norms.putIfAbsent(n.getParameter(), n.getNorm());
            }
            double[] ordered = new double[ready.getParameterOrderCount()];
            for (int i = 0; i < ordered.length; i++) {
                Double n = norms.get(ready.getParameterOrder(i));
                if (n == null) throw new IllegalStateException("reduce: nobody reported the gradient of " + ready.getParameterOrder(i));
                ordered[i] = n;
            }
            gradNorm = AdamW.globalNorm(ordered);
            return applying(AdamW.clipFactor(gradNorm, train.clipNorm()));
        });
    }

    private Behavior<Command> applying(double clipFactor) {
        lr = schedule.at(step);
        ApplyUpdate apply = ApplyUpdate.newBuilder().setStep(step).setLr(lr).setClipFactor(clipFactor).build();
        List<NodeRound.Target> targets = new ArrayList<>();
        for (RouterNode r : routers) targets.add(router(r, 1, b -> b.setApply(apply)));
        for (ExpertNode n : experts) targets.add(expert(n, b -> b.setApply(apply)));
        return awaiting(gather("apply of step " + (step + 1), targets), answers -> {
            Map<String, NodeStats> stats = new LinkedHashMap<>();
            for (CoordinatorEvent e : answers) stats.put(e.getFrom(), e.getApplied().getStats());
            finishStep(stats);
            if (checkpoints.due(step) || preempt) return checkpointing(preempt);
            return stepping();
        });
    }

    /** Losses summed in micro-batch order, exactly as the single-process trainer sums them. */
    private void finishStep(Map<String, NodeStats> stats) {
        int m = train.gradAccum();
        double loss = 0, aux = 0;
        int tokens = 0;
        for (CoordinatorEvent e : microBatches) {
            var d = e.getMicroBatchDone();
            loss += (d.getLoss() + d.getAuxLoss()) / m;
            aux += d.getAuxLoss() / m;
            tokens += d.getTokens();
        }
        Trainer.StepMetrics metrics = new Trainer.StepMetrics(step + 1, train.steps(), loss, aux, lr, gradNorm, tokens,
                (System.nanoTime() - stepStart) / 1e9);
        steps.add(metrics);
        step++;
        // the single-process run records the routing of the step's last micro-batch
        listener.onStep(metrics, microBatches.get(microBatches.size() - 1).getMicroBatchDone().getRoutingList(), stats);
    }

    // ---- checkpointing, finishing -----------------------------------------------------------------------------------

    /** Every node writes its part of the checkpoint of this step; then the manifest is committed. */
    private Behavior<Command> checkpointing(boolean thenStop) {
        Optional<Path> existing = checkpoints.reuse(step);
        if (existing.isPresent()) {
            lastCheckpoint = existing.get();
            return thenStop ? preempted() : step >= train.steps() ? evaluating() : stepping();
        }
        long started = System.nanoTime();
        Path dir = checkpoints.directory(step);
        Checkpoint request = Checkpoint.newBuilder().setStep(step).setDirectory(dir.toString()).build();
        List<NodeRound.Target> targets = new ArrayList<>();
        for (RouterNode r : routers) targets.add(router(r, 1, b -> b.setCheckpoint(request)));
        for (ExpertNode n : experts) targets.add(expert(n, b -> b.setCheckpoint(request)));
        return awaiting(gather("checkpoint of step " + step, targets), answers -> {
            List<FileDigest> files = new ArrayList<>();
            for (CoordinatorEvent e : answers) {
                if (!e.hasCheckpointed()) throw new IllegalStateException("checkpoint: unexpected answer from " + e.getFrom());
                files.addAll(e.getCheckpointed().getFilesList());
            }
            files.sort(Comparator.comparing(FileDigest::getName));
            try {
                lastCheckpoint = checkpoints.commit(step, files, sampler.epoch(), sampler.position(), placement);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException("committing the checkpoint of step " + step + ": " + e.getMessage(), e);
            }
            listener.onEvent("checkpoint", step, "", "", lastCheckpoint.toString(), (System.nanoTime() - started) / 1e9);
            return thenStop ? preempted() : step >= train.steps() ? evaluating() : stepping();
        });
    }

    /** The end of training: a last checkpoint (the final adapter is written from it), then the evaluation. */
    private Behavior<Command> finishing() {
        return checkpointing(false);
    }

    private Behavior<Command> evaluating() {
        RouterNode first = routers.get(0);
        return awaiting(gather("evaluate", List.of(router(first, 1, b -> b.setEvaluate(Evaluate.newBuilder().setDirectory(evaluationDir.toString()))))), answers -> {
            CoordinatorEvent e = answers.get(0);
            if (!e.hasEvaluated()) throw new IllegalStateException("evaluate: unexpected answer from " + e.getFrom());
            return complete(e.getEvaluated().getReportJson(), false);
        });
    }

    private Behavior<Command> preempted() {
        listener.onEvent("preempted", step, "", "SIGTERM", lastCheckpoint == null ? "" : lastCheckpoint.toString(), 0);
        return complete("[]", true);
    }

    private Behavior<Command> complete(String evaluation, boolean preempted) {
        result.complete(new Outcome(List.copyOf(steps), evaluation, lastCheckpoint, placement, ready.getBaseModel(),
                ready.getAdapterDescription(), ready.getTrainableParameters(), preempted, restarts));
        return Behaviors.stopped();
    }

    // ---- recovering -------------------------------------------------------------------------------------------------

    /**
     * Abandons the step: stops the round in flight, tells the routers to give up their waits,
     * drops the suspected nodes (Pekko Cluster downs them), waits up to
     * recovery.wait-for-replacement for spares when a role has fewer nodes than configured, then
     * initialises again from the newest valid checkpoint.
     */
    private Behavior<Command> recovering(String reason, List<String> suspects) {
        if (inFlight != null) ctx.stop(inFlight);
        inFlight = null;
        if (attempt == 1 && step == 0 && lastCheckpoint == null && suspects.isEmpty()) {
            return fail(reason); // a run that cannot even start will not start on a second try
        }
        if (recoveringSince == 0) recoveringSince = System.nanoTime();
        listener.onEvent("recovering", step, String.join(", ", suspects), reason, "", 0);
        if (restarts >= maxRestarts) {
            return fail(reason + " (no restart left: recovery.max-restarts = " + maxRestarts + ")");
        }
        restarts++;
        for (RouterNode r : routers) {
            r.ref().tell(RouterRequest.newBuilder().setAbandon(Abandon.newBuilder().setReason(reason)).build());
        }
        for (String s : suspects) {
            boolean removed = routers.removeIf(r -> r.name().equals(s)) | experts.removeIf(n -> n.name().equals(s));
            if (removed) {
                membership.down(s);
                listener.onEvent("node-lost", step, s, reason, "", 0);
            }
        }
        long waitFor = attempt;
        boolean short_ = routers.size() < config.integer("runtime.routers") || experts.size() < config.integer("runtime.expert-nodes");
        if (!short_ || replacementWait.isZero()) return resume(reason);
        timers.startSingleTimer(new ReplacementWaitOver(waitFor), replacementWait);
        return waitingForReplacements(reason, waitFor);
    }

    private Behavior<Command> waitingForReplacements(String reason, long waitFor) {
        takeSpares();
        if (routers.size() >= config.integer("runtime.routers") && experts.size() >= config.integer("runtime.expert-nodes")) {
            timers.cancel(new ReplacementWaitOver(waitFor));
            return resume(reason);
        }
        return Behaviors.receive(Command.class)
                .onMessage(NodeJoined.class, j -> {
                    spares.add(j.node());
                    listener.onEvent("node-up", step, j.node().name(), "joined as a replacement", "", 0);
                    return waitingForReplacements(reason, waitFor);
                })
                .onMessage(ReplacementWaitOver.class, w -> w.attempt() == waitFor ? resume(reason) : Behaviors.same())
                .onMessage(NodeLost.class, n -> {
                    boolean removed = routers.removeIf(r -> r.name().equals(n.node())) | experts.removeIf(e -> e.name().equals(n.node()));
                    if (removed) {
                        membership.down(n.node());
                        listener.onEvent("node-lost", step, n.node(), n.why(), "", 0);
                    }
                    return Behaviors.same();
                })
                .onMessage(Preempt.class, p -> {
                    preempt = true;
                    return Behaviors.same();
                })
                .onMessage(NodeRound.Outcome.class, o -> Behaviors.same())
                .build();
    }

    /** Moves spares into the run's roles while a role has fewer nodes than configured. */
    private void takeSpares() {
        for (var it = spares.iterator(); it.hasNext(); ) {
            Node n = it.next();
            if (n instanceof RouterNode r && routers.size() < config.integer("runtime.routers")) {
                routers.add(r);
                it.remove();
            } else if (n instanceof ExpertNode e && experts.size() < config.integer("runtime.expert-nodes")) {
                experts.add(e);
                it.remove();
            }
        }
    }

    private Behavior<Command> resume(String reason) {
        takeSpares();
        if (routers.isEmpty()) return fail(reason + "; no router left and none joined within recovery.wait-for-replacement");
        if (experts.isEmpty()) return fail(reason + "; no expert node left and none joined within recovery.wait-for-replacement");
        if (train.gradAccum() < routers.size()) return fail("train.grad-accum = " + train.gradAccum() + " cannot feed " + routers.size() + " routers");
        return initialising();
    }

    private Behavior<Command> fail(String message) {
        listener.onEvent("failed", step, "", message, "", 0);
        result.completeExceptionally(new IllegalStateException(message));
        return Behaviors.stopped();
    }
}
