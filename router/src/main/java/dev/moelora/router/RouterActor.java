package dev.moelora.router;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.moelora.model.checkpoint.StateFile;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.moelora.RoutingStats;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.train.Evaluation;
import dev.moelora.model.train.MicroBatchGradients;
import dev.moelora.model.train.OptimizerStep;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import dev.moelora.proto.control.Applied;
import dev.moelora.proto.control.Checkpoint;
import dev.moelora.proto.control.Checkpointed;
import dev.moelora.proto.control.CoordinatorEvent;
import dev.moelora.proto.control.DataEndpoint;
import dev.moelora.proto.control.Evaluated;
import dev.moelora.proto.control.ExpertPlacement;
import dev.moelora.proto.control.Failed;
import dev.moelora.proto.control.FileDigest;
import dev.moelora.proto.control.InitRouter;
import dev.moelora.proto.control.MicroBatchDone;
import dev.moelora.proto.control.ModuleRouting;
import dev.moelora.proto.control.ModuleShape;
import dev.moelora.proto.control.NodeStats;
import dev.moelora.proto.control.ParameterNorm;
import dev.moelora.proto.control.Reduced;
import dev.moelora.proto.control.Restore;
import dev.moelora.proto.control.Restored;
import dev.moelora.proto.control.RouterReady;
import dev.moelora.proto.control.RouterRequest;
import dev.moelora.proto.control.RunMicroBatch;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A router of the expert-parallel runtime: the frozen trunk with its MoELoRA gates and the task
 * heads, one micro-batch at a time. At every adapted module it routes tokens and dispatches each
 * expert's rows over Aeron ({@link RemoteExpertBank}); the losses (task, balance, contrastive)
 * are computed here, by the same module code as the single-process reference. Between
 * data-parallel routers it all-gathers the gate and head gradients and reduces them in
 * micro-batch order, so every router applies the same update. Router 0 writes the trunk's part of
 * a checkpoint (gates, heads, their AdamW state); every router restores from it. An init while a
 * run is loaded starts over from the configuration (recovery re-initialises every node). It must
 * be spawned on a pinned dispatcher: a micro-batch blocks its thread. It never holds an expert's
 * parameters.
 */
public final class RouterActor {
    private static final ObjectMapper JSON = new ObjectMapper();

    public sealed interface Command {}

    /** A request from the coordinator. */
    public record Request(RouterRequest request) implements Command {}

    /**
     * What a router trains, built from the run's configuration by whoever knows its format: an
     * encoder over tasks with their heads, or a decoder over instructions. The router only drives it.
     */
    public interface Workload {
        /** The frozen base model, as the run header names it. */
        String baseModel();

        MoeLoraAdapters adapters();

        TrainConfig train();

        /** What the router trains besides the gates, after them in the single-process order (task heads; none for a decoder). */
        List<Parameter> heads();

        /** Examples an epoch has: the coordinator's order numbers them. */
        int trainingExamples();

        /** One micro-batch: forward, task loss, backward with the gradients scaled by {@code lossScale}; the task loss and tokens. */
        OptimizerStep.Outcome trainStep(int[] examples, double lossScale);

        /** Evaluation in eval mode: the report (eval.json's array) as JSON; anything bigger (predictions) is written into {@code dir}. */
        String evaluate(Path dir) throws IOException;
    }

    @FunctionalInterface
    public interface WorkloadFactory {
        /** Builds the model with its MoELoRA experts made by {@code banks}. */
        Workload build(String config, MoeLora.BankFactory banks);
    }

    private final ActorContext<Command> ctx;
    private final String name;
    private final RouterDataPlane plane;
    private final WorkloadFactory factory;
    private final ActorRefResolver resolver;
    private final RemoteExpertBank.Position position = new RemoteExpertBank.Position();
    private Workload work;
    private List<Parameter> params;        // gates, then heads: what this router trains
    private AdamW optimizer;
    private MicroBatchGradients gradients;
    private long step = Long.MIN_VALUE;
    private final List<Integer> mine = new ArrayList<>();
    // this step's time and traffic: busy is the time in step requests; the plane's counters at the last Applied
    private long busyNanos;
    private RouterDataPlane.Traffic lastTraffic;

    private RouterActor(ActorContext<Command> ctx, String name, RouterDataPlane plane, WorkloadFactory factory) {
        this.ctx = ctx;
        this.name = name;
        this.plane = plane;
        this.factory = factory;
        this.resolver = ActorRefResolver.get(ctx.getSystem());
    }

    /**
     * A plain actor that passes the coordinator's Protobuf requests on: the reference a router
     * announces. An abandon is not queued behind the request the router is blocked in: it goes
     * straight to the data plane, whose wait then gives up.
     */
    public static Behavior<RouterRequest> requests(ActorRef<Command> router, RouterDataPlane plane) {
        return Behaviors.receiveMessage(r -> {
            if (r.getRequestCase() == RouterRequest.RequestCase.ABANDON) plane.abandon(r.getAbandon().getReason());
            else router.tell(new Request(r));
            return Behaviors.same();
        });
    }

    /** @param name how this router names itself in its answers and errors (its node's name) */
    public static Behavior<Command> create(String name, RouterDataPlane plane, WorkloadFactory factory) {
        return Behaviors.setup(ctx -> new RouterActor(ctx, name, plane, factory).behavior());
    }

    private Behavior<Command> behavior() {
        return Behaviors.receive(Command.class)
                .onMessage(Request.class, r -> {
                    ActorRef<CoordinatorEvent> replyTo = resolver.resolveActorRef(r.request().getReplyTo());
                    CoordinatorEvent.Builder event = CoordinatorEvent.newBuilder().setFrom(name);
                    long started = System.nanoTime();
                    try {
                        handle(r.request(), event);
                    } catch (RuntimeException | IOException e) {
                        ctx.getLog().error("{}: {} failed", name, r.request().getRequestCase(), e);
                        event.clearEvent().setFailed(Failed.newBuilder().setMessage(name + ": " + e.getMessage()));
                    }
                    busyNanos += System.nanoTime() - started;
                    replyTo.tell(event.build());
                    return Behaviors.same();
                })
                .build();
    }

    private void handle(RouterRequest request, CoordinatorEvent.Builder event) throws IOException {
        switch (request.getRequestCase()) {
            case INIT -> event.setRouterReady(init(request.getInit()));
            case RUN -> event.setMicroBatchDone(run(request.getRun()));
            case REDUCE -> event.setReduced(reduce(request.getReduce().getStep(), request.getReduce().getMicroBatches()));
            case APPLY -> {
                requireWork();
                double clip = request.getApply().getClipFactor();
                if (clip < 1) optimizer.scaleGradients(clip);
                optimizer.step(request.getApply().getLr());
                optimizer.zeroGrad();
                event.setApplied(Applied.newBuilder().setStep(request.getApply().getStep()).setStats(stepStats()));
            }
            case EVALUATE -> event.setEvaluated(evaluate(Path.of(request.getEvaluate().getDirectory())));
            case CHECKPOINT -> event.setCheckpointed(checkpoint(request.getCheckpoint()));
            case RESTORE -> event.setRestored(restore(request.getRestore()));
            default -> throw new IllegalArgumentException("unknown request " + request.getRequestCase());
        }
    }

    private void requireWork() {
        if (work == null) throw new IllegalStateException("not initialised: the coordinator must send init first");
    }

    /** Builds the run from its configuration, dropping whatever an earlier init built. */
    private RouterReady init(InitRouter init) {
        work = null;
        params = null;
        optimizer = null;
        gradients = null;
        step = Long.MIN_VALUE;
        mine.clear();
        List<RouterDataPlane.Endpoint> experts = new ArrayList<>();
        for (ExpertPlacement p : init.getPlacementList()) {
            if (p.getExpert() != experts.size()) throw new IllegalArgumentException("placement must list experts 0.. in order, got " + p.getExpert());
            experts.add(endpoint(p.getEndpoint()));
        }
        List<RouterDataPlane.Endpoint> routers = init.getRoutersList().stream().map(RouterActor::endpoint).toList();
        plane.startRun(init.getRunId(), init.getRouter(), experts, routers);
        Workload built = factory.build(init.getConfig(), (i, moduleInit, config) -> new RemoteExpertBank(plane, position, i, moduleInit.shape().name()));
        List<Parameter> all = new ArrayList<>(built.adapters().parameters());
        all.addAll(built.heads());
        params = List.copyOf(all);
        optimizer = AdamW.withDefaults(params, built.train().weightDecay());
        gradients = new MicroBatchGradients(params, built.train().gradAccum());
        work = built;
        busyNanos = 0;
        lastTraffic = plane.traffic();
        long heads = work.heads().stream().mapToLong(Parameter::size).sum();
        RouterReady.Builder ready = RouterReady.newBuilder().setRouter(plane.router()).setTrainingExamples(work.trainingExamples())
                .setAdapterDescription(work.adapters().describe()).setBaseModel(work.baseModel())
                .setTrainableParameters(work.adapters().trainableParameters() + heads);
        for (MoeLora.ModuleShape s : work.adapters().shapes()) {
            ready.addModules(ModuleShape.newBuilder().setName(s.name()).setDIn(s.dIn()).setDOut(s.dOut()));
        }
        ready.addAllParameterOrder(work.adapters().parameterNames());
        for (Parameter p : work.heads()) ready.addParameterOrder(p.name());
        return ready.build();
    }

    private static RouterDataPlane.Endpoint endpoint(DataEndpoint e) {
        return new RouterDataPlane.Endpoint(e.getChannel(), e.getStream());
    }

    private MicroBatchDone run(RunMicroBatch run) {
        requireWork();
        int micro = run.getMicroBatch(), total = run.getMicroBatches();
        if (total != gradients.microBatches()) {
            throw new IllegalArgumentException("step with " + total + " micro-batches; this run has train.grad-accum = " + gradients.microBatches());
        }
        if (run.getStep() != step) {
            step = run.getStep();
            mine.clear();
            int routers = Math.max(1, plane.routers());
            boolean[] own = new boolean[total];
            for (int m = 0; m < total; m++) own[m] = m % routers == plane.router();
            INDArray[][] slots = new INDArray[total][params.size()];
            for (int m = 0; m < total; m++) for (int i = 0; i < params.size(); i++) slots[m][i] = gradients.slot(m, i);
            plane.beginStep(step, slots, own);
        }
        mine.add(micro);
        int[] examples = run.getExamplesList().stream().mapToInt(Integer::intValue).toArray();
        position.step = step;
        position.micro = micro;
        work.adapters().setTraining(true);
        work.adapters().setAuxiliaryLossScale(1.0 / total);
        work.adapters().reseed(Trainer.microBatchSeed(work.train().seed(), (int) step, micro));
        OptimizerStep.Outcome o = work.trainStep(examples, 1.0 / total);
        double aux = work.adapters().takeAuxiliaryLoss();
        gradients.capture(micro);
        MicroBatchDone.Builder done = MicroBatchDone.newBuilder().setRouter(plane.router()).setStep(step).setMicroBatch(micro)
                .setLoss(o.loss()).setAuxLoss(aux).setTokens(o.tokens());
        for (RoutingStats s : work.adapters().stats()) done.addRouting(routing(s));
        return done.build();
    }

    /** RoutingStats field for field; the cosine matrix row-major. */
    static ModuleRouting routing(RoutingStats s) {
        ModuleRouting.Builder m = ModuleRouting.newBuilder().setModule(s.module()).setGateEntropy(s.gateEntropy())
                .setBalanceLoss(s.balanceLoss()).setContrastiveLoss(s.contrastiveLoss()).setDroppedTokens(s.droppedTokens())
                .setTokens(s.tokens());
        for (long r : s.routedTokens()) m.addRoutedTokens(r);
        for (double g : s.gateMass()) m.addGateMass(g);
        for (double[] row : s.meanOutputCosine()) for (double c : row) m.addMeanOutputCosine(c);
        return m.build();
    }

    private Reduced reduce(long reduceStep, int microBatches) {
        requireWork();
        if (reduceStep != step) throw new IllegalStateException("reduce of step " + reduceStep + " but this router ran step " + step);
        INDArray[] tensors = new INDArray[params.size()];
        for (int m : mine) {
            for (int i = 0; i < tensors.length; i++) tensors[i] = gradients.slot(m, i);
            plane.sendGradients(step, m, tensors);
        }
        plane.awaitGradients(step, (microBatches - mine.size()) * params.size());
        gradients.reduce(microBatches);
        Reduced.Builder r = Reduced.newBuilder().setStep(step);
        for (Parameter p : params) r.addNorms(ParameterNorm.newBuilder().setParameter(p.name()).setNorm(AdamW.norm(p)));
        return r.build();
    }

    /**
     * This step's time and traffic since the last Applied: compute is the time in step requests
     * less the data plane's sending and waiting; the apply itself is included.
     */
    private NodeStats stepStats() {
        RouterDataPlane.Traffic now = plane.traffic();
        long send = now.sendNanos() - lastTraffic.sendNanos(), wait = now.waitNanos() - lastTraffic.waitNanos();
        NodeStats.Builder s = NodeStats.newBuilder().setRole("router")
                .setComputeS(Math.max(0, busyNanos - send - wait) / 1e9).setWaitS(wait / 1e9).setTransferS(send / 1e9)
                .setBytesSent(now.bytesSent() - lastTraffic.bytesSent()).setBytesReceived(now.bytesReceived() - lastTraffic.bytesReceived())
                .setFramesSent(now.framesSent() - lastTraffic.framesSent()).setFramesReceived(now.framesReceived() - lastTraffic.framesReceived());
        now.dropped().forEach((k, v) -> {
            long d = v - lastTraffic.dropped().getOrDefault(k, 0L);
            if (d > 0) s.putFramesDropped(k, d);
        });
        lastTraffic = now;
        busyNanos = 0;
        return s.build();
    }

    private Evaluated evaluate(Path dir) throws IOException {
        requireWork();
        work.adapters().setTraining(false);
        position.step = -1;
        position.micro = 0;
        return Evaluated.newBuilder().setReportJson(work.evaluate(dir)).build();
    }

    /** The evaluation report: a JSON array with one {task, examples, correct, chance} object per task, in order. */
    public static String reportJson(List<Evaluation.TaskScore> scores) throws JsonProcessingException {
        ArrayNode report = JSON.createArrayNode();
        for (Evaluation.TaskScore s : scores) {
            report.addObject().put("task", s.task()).put("examples", s.examples()).put("correct", s.correct()).put("chance", s.chance());
        }
        return JSON.writeValueAsString(report);
    }

    /** Router 0 writes the trunk's state; the others hold the same tensors and write nothing. */
    private Checkpointed checkpoint(Checkpoint c) throws IOException {
        requireWork();
        Checkpointed.Builder done = Checkpointed.newBuilder().setStep(c.getStep());
        if (plane.router() == 0) {
            for (dev.moelora.model.checkpoint.FileDigest d : StateFile.writeAll(Path.of(c.getDirectory()), params, optimizer)) done.addFiles(digest(d));
        }
        return done.build();
    }

    /** Every router reads the trunk's file (gates, heads, their AdamW state), verified before use. */
    private Restored restore(Restore r) throws IOException {
        requireWork();
        StateFile.readAll(Path.of(r.getDirectory()), ours(r.getFilesList(), params), params, optimizer);
        return Restored.newBuilder().setStep(r.getStep()).build();
    }

    /** The wire's digest of a state file. */
    public static FileDigest digest(dev.moelora.model.checkpoint.FileDigest d) {
        return FileDigest.newBuilder().setName(d.name()).setSize(d.size()).setSha256(d.sha256()).build();
    }

    /** Of a checkpoint's files, those {@code params} are stored in, as the state-file format names them. */
    public static List<dev.moelora.model.checkpoint.FileDigest> ours(List<FileDigest> files, List<Parameter> params) {
        java.util.Set<String> mine = StateFile.split(params).keySet();
        return files.stream().filter(f -> mine.contains(f.getName()))
                .map(f -> new dev.moelora.model.checkpoint.FileDigest(f.getName(), f.getSize(), f.getSha256())).toList();
    }
}
