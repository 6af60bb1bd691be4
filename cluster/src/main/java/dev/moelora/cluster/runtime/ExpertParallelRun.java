package dev.moelora.cluster.runtime;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.setup.RunSetup;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.LrSchedule;
import dev.moelora.model.train.ExampleSampler;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import dev.moelora.proto.control.ApplyUpdate;
import dev.moelora.proto.control.CoordinatorEvent;
import dev.moelora.proto.control.DataEndpoint;
import dev.moelora.proto.control.Evaluate;
import dev.moelora.proto.control.ExpertPlacement;
import dev.moelora.proto.control.ExpertRequest;
import dev.moelora.proto.control.InitExperts;
import dev.moelora.proto.control.InitRouter;
import dev.moelora.proto.control.ParameterNorm;
import dev.moelora.proto.control.ReduceGradients;
import dev.moelora.proto.control.RouterReady;
import dev.moelora.proto.control.RouterRequest;
import dev.moelora.proto.control.RunMicroBatch;
import dev.moelora.proto.control.Save;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Coordinates one MoELoRA run of the expert-parallel runtime: initialises the routers and the
 * expert nodes, places the experts, then drives every step (DESIGN.md, "One MoELoRA training
 * step"): micro-batches to the routers, then a reduce on every router and expert node, the global
 * gradient norm summed in the single-process parameter order, then the update everywhere. It
 * draws the batches from the same sampler as the single-process trainer and sums the losses in
 * micro-batch order, so its step metrics are the reference's. At the end it asks router 0 to
 * evaluate and everyone to save. Any failure, timeout or lost node ends the run with a message
 * naming who failed. It computes nothing heavy and holds no tensor.
 */
public final class ExpertParallelRun {
    public sealed interface Command {}

    /** An answer from a router or expert node. */
    public record Event(CoordinatorEvent event) implements Command {}

    /** A node hosting part of the run left the cluster or became unreachable. */
    public record NodeLost(String node) implements Command {}

    private record Timeout(long phase) implements Command {}

    public record RouterNode(String name, ActorRef<RouterRequest> ref, DataEndpoint endpoint) {}

    public record ExpertNode(String name, ActorRef<ExpertRequest> ref, DataEndpoint endpoint, int devices) {}

    /** Step metrics as the single-process trainer reports them. */
    public interface Listener {
        void onStart(List<String> placement);

        void onStep(Trainer.StepMetrics metrics);
    }

    /**
     * What a finished run leaves: router 0's evaluation (JSON), the files every node saved, where
     * the experts were, and the adapter as router 0 described it (description, trainable parameters).
     */
    public record Outcome(List<Trainer.StepMetrics> steps, String evaluationJson, List<String> files, List<ExpertPlacement> placement,
                          String baseModel, String adapterDescription, long trainableParameters) {}

    private final ActorContext<Command> ctx;
    private final TimerScheduler<Command> timers;
    private final RunConfig config;
    private final long runId;
    private final List<RouterNode> routers;
    private final List<ExpertNode> experts;
    private final Listener listener;
    private final CompletableFuture<Outcome> result;
    private final Duration timeout;
    private final String replyTo;
    private final TrainConfig train;
    private final ExampleSampler sampler;
    private final LrSchedule schedule;
    private final String savePath;

    private List<ExpertPlacement> placement;
    private RouterReady ready;
    private long phase;
    private String awaiting = "";
    private int outstanding;
    private final List<CoordinatorEvent> answers = new ArrayList<>();
    private int step;
    private long stepStart;
    private final List<Trainer.StepMetrics> steps = new ArrayList<>();
    private String evaluation = "";
    private final List<String> files = new ArrayList<>();
    private List<CoordinatorEvent> lastMicroBatches = List.of(); // this step's, in micro-batch order
    private double gradNorm, lr;

    private ExpertParallelRun(ActorContext<Command> ctx, TimerScheduler<Command> timers, RunConfig config, long runId,
                              List<RouterNode> routers, List<ExpertNode> experts, ExampleSampler sampler, String savePath,
                              Listener listener, CompletableFuture<Outcome> result) {
        this.ctx = ctx;
        this.timers = timers;
        this.config = config;
        this.runId = runId;
        this.routers = List.copyOf(routers);
        this.experts = List.copyOf(experts);
        this.listener = listener;
        this.result = result;
        this.timeout = config.duration("runtime.timeout");
        this.train = RunSetup.trainConfig(config);
        this.sampler = sampler;
        this.schedule = train.schedule();
        this.savePath = savePath;
        ActorRef<CoordinatorEvent> events = ctx.messageAdapter(CoordinatorEvent.class, Event::new);
        this.replyTo = ActorRefResolver.get(ctx.getSystem()).toSerializationFormat(events);
    }

    /**
     * @param sampler  the run's training examples, as the routers pool them
     * @param savePath directory every node writes its tensors to (its own file system)
     */
    public static Behavior<Command> create(RunConfig config, long runId, List<RouterNode> routers, List<ExpertNode> experts,
                                           ExampleSampler sampler, String savePath, Listener listener, CompletableFuture<Outcome> result) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new ExpertParallelRun(ctx, timers, config, runId, routers, experts, sampler, savePath, listener, result).start()));
    }

    private Behavior<Command> start() {
        if (routers.isEmpty()) return fail("no router");
        if (train.gradAccum() < routers.size()) {
            return fail("train.grad-accum = " + train.gradAccum() + " micro-batches per step cannot feed " + routers.size()
                    + " routers (each router runs at least one)");
        }
        try {
            List<Placement.Node> nodes = experts.stream().map(n -> new Placement.Node(n.name(), n.endpoint(), n.devices())).toList();
            placement = Placement.assign(config.integer("adapter.experts"), nodes, config.strings("runtime.placement"));
        } catch (IllegalArgumentException e) {
            return fail(e.getMessage());
        }
        listener.onStart(Placement.describe(placement));
        InitRouter.Builder init = InitRouter.newBuilder().setRunId(runId).setConfig(config.render()).addAllPlacement(placement);
        for (RouterNode r : routers) init.addRouters(r.endpoint());
        await("router init", routers.size());
        for (int r = 0; r < routers.size(); r++) {
            routers.get(r).ref().tell(RouterRequest.newBuilder().setReplyTo(replyTo).setInit(init.setRouter(r)).build());
        }
        return running();
    }

    private Behavior<Command> running() {
        return Behaviors.receive(Command.class)
                .onMessage(Event.class, e -> onEvent(e.event()))
                .onMessage(NodeLost.class, n -> fail("node " + n.node() + " left the cluster during " + awaiting
                        + " (recovery of lost nodes is not implemented yet)"))
                .onMessage(Timeout.class, t -> t.phase() == phase
                        ? fail(awaiting + " timed out after " + timeout.toSeconds() + " s: " + outstanding + " answers missing (runtime.timeout)")
                        : Behaviors.same())
                .build();
    }

    private void await(String what, int count) {
        phase++;
        awaiting = what;
        outstanding = count;
        answers.clear();
        timers.startSingleTimer(new Timeout(phase), timeout);
    }

    private Behavior<Command> onEvent(CoordinatorEvent event) {
        if (event.hasFailed()) return fail(event.getFailed().getMessage());
        if (outstanding == 0) {
            ctx.getLog().warn("an answer from {} arrived while nothing was awaited; ignored", event.getFrom());
            return Behaviors.same();
        }
        answers.add(event);
        if (--outstanding > 0) return Behaviors.same();
        timers.cancel(new Timeout(phase));
        try {
            return next();
        } catch (RuntimeException e) {
            return fail(e.getMessage());
        }
    }

    /** The phase that just completed decides the next. */
    private Behavior<Command> next() {
        switch (awaiting) {
            case "router init" -> {
                ready = null;
                for (CoordinatorEvent e : answers) {
                    if (!e.hasRouterReady()) throw new IllegalStateException("router init: unexpected answer from " + e.getFrom());
                    RouterReady r = e.getRouterReady();
                    if (ready == null || r.getRouter() == 0) ready = r;
                }
                await("expert init", experts.size());
                for (ExpertNode n : experts) {
                    InitExperts.Builder init = InitExperts.newBuilder().setRunId(runId).setConfig(config.render())
                            .addAllModules(ready.getModulesList()).setMicroBatches(train.gradAccum());
                    for (RouterNode r : routers) init.addRouters(r.endpoint());
                    for (ExpertPlacement p : placement) if (p.getNode().equals(n.name())) init.addHosted(p);
                    n.ref().tell(ExpertRequest.newBuilder().setReplyTo(replyTo).setInit(init).build());
                }
            }
            case "expert init" -> startStep();
            case "micro-batches" -> {
                lastMicroBatches = answersSorted();
                await("reduce", routers.size() + experts.size());
                ReduceGradients reduce = ReduceGradients.newBuilder().setStep(step).setMicroBatches(train.gradAccum()).build();
                for (RouterNode r : routers) r.ref().tell(RouterRequest.newBuilder().setReplyTo(replyTo).setReduce(reduce).build());
                for (ExpertNode n : experts) n.ref().tell(ExpertRequest.newBuilder().setReplyTo(replyTo).setReduce(reduce).build());
            }
            case "reduce" -> {
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
                double factor = AdamW.clipFactor(gradNorm, train.clipNorm());
                lr = schedule.at(step);
                await("apply", routers.size() + experts.size());
                ApplyUpdate apply = ApplyUpdate.newBuilder().setStep(step).setLr(lr).setClipFactor(factor).build();
                for (RouterNode r : routers) r.ref().tell(RouterRequest.newBuilder().setReplyTo(replyTo).setApply(apply).build());
                for (ExpertNode n : experts) n.ref().tell(ExpertRequest.newBuilder().setReplyTo(replyTo).setApply(apply).build());
            }
            case "apply" -> {
                finishStep();
                if (step < train.steps()) {
                    startStep();
                } else {
                    await("evaluate", 1);
                    routers.get(0).ref().tell(RouterRequest.newBuilder().setReplyTo(replyTo)
                            .setEvaluate(Evaluate.newBuilder()).build());
                }
            }
            case "evaluate" -> {
                evaluation = answers.get(0).getEvaluated().getReportJson();
                await("save", 1 + experts.size());
                Save save = Save.newBuilder().setDirectory(savePath).build();
                routers.get(0).ref().tell(RouterRequest.newBuilder().setReplyTo(replyTo).setSave(save).build());
                for (ExpertNode n : experts) n.ref().tell(ExpertRequest.newBuilder().setReplyTo(replyTo).setSave(save).build());
            }
            case "save" -> {
                for (CoordinatorEvent e : answers) files.addAll(e.getSaved().getFilesList());
                result.complete(new Outcome(List.copyOf(steps), evaluation, List.copyOf(files), placement, ready.getBaseModel(), ready.getAdapterDescription(),
                        ready.getTrainableParameters()));
                return Behaviors.stopped();
            }
            default -> throw new IllegalStateException("no phase " + awaiting);
        }
        return Behaviors.same();
    }


    private List<CoordinatorEvent> answersSorted() {
        for (CoordinatorEvent e : answers) {
            if (!e.hasMicroBatchDone()) throw new IllegalStateException("micro-batches: unexpected answer from " + e.getFrom());
        }
        List<CoordinatorEvent> sorted = new ArrayList<>(answers);
        sorted.sort(java.util.Comparator.comparingInt(e -> e.getMicroBatchDone().getMicroBatch()));
        return sorted;
    }

    private void startStep() {
        stepStart = System.nanoTime();
        int m = train.gradAccum();
        await("micro-batches", m);
        for (int micro = 0; micro < m; micro++) {
            RunMicroBatch.Builder run = RunMicroBatch.newBuilder().setStep(step).setMicroBatch(micro).setMicroBatches(m);
            for (int i : sampler.nextIndices(train.batchSize())) run.addExamples(i);
            routers.get(micro % routers.size()).ref().tell(RouterRequest.newBuilder().setReplyTo(replyTo).setRun(run).build());
        }
    }

    /** Losses summed in micro-batch order, exactly as the single-process trainer sums them. */
    private void finishStep() {
        int m = train.gradAccum();
        double loss = 0, aux = 0;
        int tokens = 0;
        for (CoordinatorEvent e : lastMicroBatches) {
            var d = e.getMicroBatchDone();
            loss += (d.getLoss() + d.getAuxLoss()) / m;
            aux += d.getAuxLoss() / m;
            tokens += d.getTokens();
        }
        Trainer.StepMetrics metrics = new Trainer.StepMetrics(step + 1, train.steps(), loss, aux, lr, gradNorm, tokens,
                (System.nanoTime() - stepStart) / 1e9);
        steps.add(metrics);
        listener.onStep(metrics);
        step++;
    }

    private Behavior<Command> fail(String message) {
        result.completeExceptionally(new IllegalStateException(message));
        return Behaviors.stopped();
    }
}
