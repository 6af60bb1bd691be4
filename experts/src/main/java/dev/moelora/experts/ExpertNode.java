package dev.moelora.experts;

import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.proto.control.Applied;
import dev.moelora.proto.control.CoordinatorEvent;
import dev.moelora.proto.control.ExpertPlacement;
import dev.moelora.proto.control.ExpertRequest;
import dev.moelora.proto.control.ExpertsReady;
import dev.moelora.proto.control.Failed;
import dev.moelora.proto.control.InitExperts;
import dev.moelora.proto.control.ModuleShape;
import dev.moelora.proto.control.ParameterNorm;
import dev.moelora.proto.control.Reduced;
import dev.moelora.proto.control.Saved;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.pekko.actor.ActorInitializationException;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ChildFailed;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * The expert side of a node: receives the coordinator's requests (Protobuf, over Pekko), spawns
 * one {@link ExpertActor} per hosted expert on its own pinned thread and device slot, and gathers
 * their answers to each request into one reply. One request is in flight at a time; a request
 * whose experts do not all answer within the timeout fails with a message naming the silent ones.
 * It watches its experts: one that stops (an exception in its setup or a step command) fails the
 * request in flight at once with the expert's cause, and every later request names it. It never
 * computes.
 */
public final class ExpertNode {
    public sealed interface Command {}

    /** A request from the coordinator. */
    public record Request(ExpertRequest request) implements Command {}

    private record Started(ExpertActor.Started started) implements Command {}

    private record ExpertReduced(ExpertActor.Reduced reduced) implements Command {}

    private record ExpertApplied(ExpertActor.Applied applied) implements Command {}

    private record ExpertSaved(ExpertActor.Saved saved) implements Command {}

    private record Timeout(long request) implements Command {}

    /** What a node needs from the run's configuration: read by whoever knows the config format. */
    public record Settings(MoeLoraConfig adapter, long adapterSeed, double weightDecay) {}

    @FunctionalInterface
    public interface SettingsReader {
        Settings read(String config);
    }

    private final ActorContext<Command> ctx;
    private final String name;
    private final ExpertDataPlane dataPlane;
    private final SettingsReader settings;
    private final Duration timeout;
    private final ActorRefResolver resolver;
    private final Map<Integer, ActorRef<ExpertActor.Command>> experts = new TreeMap<>();
    private final Map<Integer, String> stopped = new TreeMap<>(); // experts whose actor stopped, and why
    private int expected;
    // the request in flight
    private long requestId;
    private String kind = "";
    private ActorRef<CoordinatorEvent> replyTo;
    private long step;
    private final Map<Integer, Object> answers = new TreeMap<>();

    private ExpertNode(ActorContext<Command> ctx, String name, ExpertDataPlane dataPlane, SettingsReader settings, Duration timeout) {
        this.ctx = ctx;
        this.name = name;
        this.dataPlane = dataPlane;
        this.settings = settings;
        this.timeout = timeout;
        this.resolver = ActorRefResolver.get(ctx.getSystem());
    }

    /** A plain actor that passes the coordinator's Protobuf requests on: the reference an expert node announces. */
    public static Behavior<ExpertRequest> requests(ActorRef<Command> node) {
        return Behaviors.receiveMessage(r -> {
            node.tell(new Request(r));
            return Behaviors.same();
        });
    }

    /**
     * @param name    how this node names itself in events and errors
     * @param timeout how long a request may wait for its experts
     */
    public static Behavior<Command> create(String name, ExpertDataPlane dataPlane, SettingsReader settings, Duration timeout) {
        return Behaviors.setup(ctx -> new ExpertNode(ctx, name, dataPlane, settings, timeout).behavior());
    }

    private Behavior<Command> behavior() {
        return Behaviors.withTimers(timers -> Behaviors.receive(Command.class)
                .onMessage(Request.class, r -> {
                    if (!kind.isEmpty()) {
                        reply(resolve(r.request().getReplyTo()), failed("a " + r.request().getRequestCase() + " arrived while " + kind + " is in flight"));
                        return Behaviors.same();
                    }
                    replyTo = resolve(r.request().getReplyTo());
                    requestId++;
                    answers.clear();
                    timers.startSingleTimer(new Timeout(requestId), timeout);
                    handle(r.request());
                    return Behaviors.same();
                })
                .onMessage(Started.class, s -> answer(s.started().expert(), s.started(), timers))
                .onMessage(ExpertReduced.class, r -> answer(r.reduced().expert(), r.reduced(), timers))
                .onMessage(ExpertApplied.class, a -> answer(a.applied().expert(), a.applied(), timers))
                .onMessage(ExpertSaved.class, s -> answer(s.saved().expert(), s.saved(), timers))
                .onMessage(Timeout.class, t -> {
                    if (t.request() != requestId || kind.isEmpty()) return Behaviors.same();
                    List<Integer> silent = new ArrayList<>(experts.keySet());
                    silent.removeAll(answers.keySet());
                    reply(replyTo, failed(kind + " timed out after " + timeout.toSeconds() + " s: no answer from experts " + silent));
                    kind = "";
                    return Behaviors.same();
                })
                .onSignal(ChildFailed.class, f -> expertStopped(f.getRef(), f.getCause() instanceof ActorInitializationException start
                        && start.getCause() != null ? "could not start: " + ExpertActor.describe(start.getCause())
                        : ExpertActor.describe(f.getCause()), timers))
                .onSignal(Terminated.class, t -> expertStopped(t.getRef(), "without a failure", timers))
                .build());
    }

    /** An expert's actor is gone: fail the request in flight if it still waits for that expert; later requests are refused. */
    private Behavior<Command> expertStopped(ActorRef<Void> ref, String why, TimerScheduler<Command> timers) {
        Integer expert = null;
        for (Map.Entry<Integer, ActorRef<ExpertActor.Command>> e : experts.entrySet()) if (e.getValue().equals(ref)) expert = e.getKey();
        if (expert == null) return Behaviors.same();
        stopped.put(expert, why);
        ctx.getLog().error("{}: expert {} stopped ({})", name, expert, why);
        if (!kind.isEmpty() && !answers.containsKey(expert)) {
            timers.cancelAll();
            reply(replyTo, failed(kind + " failed: expert " + expert + " stopped (" + why + ")"));
            kind = "";
        }
        return Behaviors.same();
    }

    private ActorRef<CoordinatorEvent> resolve(String ref) {
        return resolver.resolveActorRef(ref);
    }

    private void handle(ExpertRequest request) {
        if (request.getRequestCase() != ExpertRequest.RequestCase.INIT && !stopped.isEmpty()) {
            reply(replyTo, failed(request.getRequestCase().name().toLowerCase(java.util.Locale.ROOT) + " refused: experts stopped earlier: " + stopped));
            return;
        }
        switch (request.getRequestCase()) {
            case INIT -> init(request.getInit());
            case REDUCE -> {
                kind = "reduce";
                step = request.getReduce().getStep();
                ActorRef<ExpertActor.Reduced> to = ctx.messageAdapter(ExpertActor.Reduced.class, ExpertReduced::new);
                experts.values().forEach(e -> e.tell(new ExpertActor.Reduce(request.getReduce().getMicroBatches(), to)));
            }
            case APPLY -> {
                kind = "apply";
                step = request.getApply().getStep();
                ActorRef<ExpertActor.Applied> to = ctx.messageAdapter(ExpertActor.Applied.class, ExpertApplied::new);
                experts.values().forEach(e -> e.tell(new ExpertActor.Apply(request.getApply().getLr(), request.getApply().getClipFactor(), to)));
            }
            case SAVE -> {
                kind = "save";
                ActorRef<ExpertActor.Saved> to = ctx.messageAdapter(ExpertActor.Saved.class, ExpertSaved::new);
                experts.values().forEach(e -> e.tell(new ExpertActor.Save(Path.of(request.getSave().getDirectory()), to)));
            }
            default -> reply(replyTo, failed("unknown request " + request.getRequestCase()));
        }
    }

    private void init(InitExperts init) {
        if (!experts.isEmpty()) {
            reply(replyTo, failed("already initialised with experts " + experts.keySet()));
            return;
        }
        kind = "init";
        Settings s;
        try {
            s = settings.read(init.getConfig());
        } catch (RuntimeException e) {
            kind = "";
            reply(replyTo, failed("the run's configuration: " + e.getMessage()));
            return;
        }
        List<MoeLora.ModuleShape> modules = new ArrayList<>();
        for (ModuleShape m : init.getModulesList()) modules.add(new MoeLora.ModuleShape(m.getName(), m.getDIn(), m.getDOut()));
        List<ExpertDataPlane.Endpoint> routers = init.getRoutersList().stream()
                .map(e -> new ExpertDataPlane.Endpoint(e.getChannel(), e.getStream())).toList();
        dataPlane.startRun(init.getRunId(), routers);
        expected = init.getHostedCount();
        ActorRef<ExpertActor.Started> started = ctx.messageAdapter(ExpertActor.Started.class, Started::new);
        for (ExpertPlacement p : init.getHostedList()) {
            ExpertActor.Setup setup = new ExpertActor.Setup(init.getRunId(), p.getExpert(), p.getDevice(), modules, s.adapter(),
                    s.adapterSeed(), s.weightDecay(), init.getMicroBatches(), dataPlane);
            ActorRef<ExpertActor.Command> ref = ctx.spawn(ExpertActor.create(setup, started), "expert-" + p.getExpert(),
                    DispatcherSelector.fromConfig("moelora.expert-dispatcher"));
            ctx.watch(ref);
            experts.put(p.getExpert(), ref);
            ctx.getLog().debug("{}: expert {} on {} device slot {}", name, p.getExpert(), DeviceSlots.kind(), p.getDevice());
        }
        if (expected == 0) {
            kind = "";
            reply(replyTo, CoordinatorEvent.newBuilder().setFrom(name).setExpertsReady(ExpertsReady.newBuilder()).build());
        }
    }

    private Behavior<Command> answer(int expert, Object answer, TimerScheduler<Command> timers) {
        if (kind.isEmpty()) return Behaviors.same();
        answers.put(expert, answer);
        int want = kind.equals("init") ? expected : experts.size();
        if (answers.size() < want) return Behaviors.same();
        timers.cancelAll();
        CoordinatorEvent.Builder event = CoordinatorEvent.newBuilder().setFrom(name);
        switch (kind) {
            case "init" -> event.setExpertsReady(ExpertsReady.newBuilder().addAllExperts(answers.keySet()));
            case "reduce" -> {
                Reduced.Builder r = Reduced.newBuilder().setStep(step);
                for (Object o : answers.values()) {
                    ExpertActor.Reduced x = (ExpertActor.Reduced) o;
                    for (int i = 0; i < x.norms().length; i++) {
                        r.addNorms(ParameterNorm.newBuilder().setParameter(x.parameters().get(i)).setNorm(x.norms()[i]));
                    }
                }
                event.setReduced(r);
            }
            case "apply" -> event.setApplied(Applied.newBuilder().setStep(step));
            case "save" -> {
                Saved.Builder sv = Saved.newBuilder();
                for (Object o : answers.values()) sv.addFiles(((ExpertActor.Saved) o).file().toString());
                event.setSaved(sv);
            }
            default -> throw new IllegalStateException(kind);
        }
        kind = "";
        reply(replyTo, event.build());
        return Behaviors.same();
    }

    private CoordinatorEvent failed(String message) {
        return CoordinatorEvent.newBuilder().setFrom(name).setFailed(Failed.newBuilder().setMessage(name + ": " + message)).build();
    }

    private static void reply(ActorRef<CoordinatorEvent> to, CoordinatorEvent event) {
        to.tell(event);
    }
}
