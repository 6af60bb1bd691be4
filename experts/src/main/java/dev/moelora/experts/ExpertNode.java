package dev.moelora.experts;

import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.proto.control.Applied;
import dev.moelora.proto.control.Checkpointed;
import dev.moelora.proto.control.CoordinatorEvent;
import dev.moelora.proto.control.DeviceStats;
import dev.moelora.proto.control.ExpertPlacement;
import dev.moelora.proto.control.ExpertRequest;
import dev.moelora.proto.control.ExpertsReady;
import dev.moelora.proto.control.Failed;
import dev.moelora.proto.control.InitExperts;
import dev.moelora.proto.control.ModuleShape;
import dev.moelora.proto.control.NodeStats;
import dev.moelora.proto.control.ParameterNorm;
import dev.moelora.proto.control.Reduced;
import dev.moelora.proto.control.Restored;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import org.apache.pekko.actor.ActorInitializationException;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.ChildFailed;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * The expert side of a node: receives the coordinator's requests (Protobuf, over Pekko), spawns
 * one {@link ExpertActor} per hosted expert on its own pinned thread and device slot, and answers
 * each request with one reply gathered from its experts by a short-lived {@link ExpertRound}
 * (one timeout, naming the silent experts). Its phases are behaviours: {@link #idle} (no run),
 * {@link #serving} (experts up, one request at a time) and {@link #stopping} (an init that resets
 * a node that hosted experts: the old experts stop before the new ones start). It watches its
 * experts: one that stops fails the request in flight at once with its cause, and every later
 * request names it until the next init. It never computes.
 */
public final class ExpertNode {
    public sealed interface Command {}

    /** A request from the coordinator. */
    public record Request(ExpertRequest request) implements Command {}

    /** A round this node spawned has every expert's reply, in expert order, or failed. */
    record RoundDone(long round, List<ExpertActor.Reply> replies) implements Command {}

    record RoundFailed(long round, String message) implements Command {}

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
    private long rounds;

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
     * @param name    how this node names itself in events and errors (its node's name)
     * @param timeout how long a request may wait for its experts
     */
    public static Behavior<Command> create(String name, ExpertDataPlane dataPlane, SettingsReader settings, Duration timeout) {
        return Behaviors.setup(ctx -> new ExpertNode(ctx, name, dataPlane, settings, timeout).idle());
    }

    /** The experts of a run, and what became of those that stopped. */
    private record Hosted(Map<Integer, ActorRef<ExpertActor.Command>> experts, Map<Integer, String> stopped, long lastApplied,
                          ExpertDataPlane.Traffic lastTraffic) {}

    private Behavior<Command> idle() {
        return Behaviors.receive(Command.class)
                .onMessage(Request.class, r -> {
                    if (r.request().getRequestCase() == ExpertRequest.RequestCase.INIT) return start(r.request());
                    reply(r.request(), failed(lower(r.request()) + " refused: not initialised (the coordinator sends init first)"));
                    return Behaviors.same();
                })
                .onMessage(RoundDone.class, d -> Behaviors.same())
                .onMessage(RoundFailed.class, f -> Behaviors.same())
                .build();
    }

    /** Starts the experts an init hosts and waits for each to report its state exists. */
    private Behavior<Command> start(ExpertRequest request) {
        InitExperts init = request.getInit();
        Settings s;
        try {
            s = settings.read(init.getConfig());
        } catch (RuntimeException e) {
            reply(request, failed("the run's configuration: " + e.getMessage()));
            return idle();
        }
        List<MoeLora.ModuleShape> modules = new ArrayList<>();
        for (ModuleShape m : init.getModulesList()) modules.add(new MoeLora.ModuleShape(m.getName(), m.getDIn(), m.getDOut()));
        List<ExpertDataPlane.Endpoint> routers = init.getRoutersList().stream()
                .map(e -> new ExpertDataPlane.Endpoint(e.getChannel(), e.getStream())).toList();
        dataPlane.startRun(init.getRunId(), routers);
        Map<Integer, ActorRef<ExpertActor.Command>> experts = new TreeMap<>();
        long round = ++rounds;
        List<ExpertActor.Setup> setups = new ArrayList<>();
        for (ExpertPlacement p : init.getHostedList()) {
            setups.add(new ExpertActor.Setup(init.getRunId(), p.getExpert(), p.getDevice(), modules, s.adapter(), s.adapterSeed(),
                    s.weightDecay(), init.getMicroBatches(), dataPlane));
        }
        // the round is spawned first so that the experts can report to it as they start
        ActorRef<ExpertRound.Message> starting = ctx.spawnAnonymous(ExpertRound.collecting("init", setups.stream().map(ExpertActor.Setup::expert).toList(),
                timeout, ctx.getSelf(), round));
        ActorRef<ExpertActor.Reply> startedTo = ctx.messageAdapter(ExpertActor.Reply.class, r -> new Relay(starting, r));
        for (ExpertActor.Setup setup : setups) {
            ActorRef<ExpertActor.Command> ref = ctx.spawn(ExpertActor.create(setup, startedTo), "expert-" + setup.expert() + "-" + round,
                    DispatcherSelector.fromConfig("moelora.expert-dispatcher"));
            ctx.watch(ref);
            experts.put(setup.expert(), ref);
            ctx.getLog().debug("{}: expert {} on {} device slot {}", name, setup.expert(), DeviceSlots.kind(), setup.device());
        }
        Hosted hosted = new Hosted(experts, new TreeMap<>(), System.nanoTime(), dataPlane.traffic());
        return busy(hosted, request, round, starting);
    }

    /** A reply from an expert for a round, passed on to it. */
    private record Relay(ActorRef<ExpertRound.Message> round, ExpertActor.Reply reply) implements Command {}

    /** Experts up: one request at a time, each gathered by its own round. */
    private Behavior<Command> serving(Hosted hosted) {
        return Behaviors.receive(Command.class)
                .onMessage(Request.class, r -> {
                    ExpertRequest request = r.request();
                    if (request.getRequestCase() == ExpertRequest.RequestCase.INIT) return stopping(hosted, request);
                    if (!hosted.stopped().isEmpty()) {
                        reply(request, failed(lower(request) + " refused: experts stopped earlier: " + hosted.stopped()));
                        return Behaviors.same();
                    }
                    Function<ActorRef<ExpertActor.Reply>, ExpertActor.Command> command = switch (request.getRequestCase()) {
                        case REDUCE -> to -> new ExpertActor.Reduce(request.getReduce().getMicroBatches(), to);
                        case APPLY -> to -> new ExpertActor.Apply(request.getApply().getLr(), request.getApply().getClipFactor(), to);
                        case CHECKPOINT -> to -> new ExpertActor.Checkpoint(Path.of(request.getCheckpoint().getDirectory()), to);
                        case RESTORE -> to -> new ExpertActor.Restore(Path.of(request.getRestore().getDirectory()),
                                request.getRestore().getFilesList(), to);
                        default -> null;
                    };
                    if (command == null) {
                        reply(request, failed("unknown request " + request.getRequestCase()));
                        return Behaviors.same();
                    }
                    long round = ++rounds;
                    ActorRef<ExpertRound.Message> gathering = ctx.spawnAnonymous(ExpertRound.create(lower(request), hosted.experts(), command,
                            timeout, ctx.getSelf(), round));
                    return busy(hosted, request, round, gathering);
                })
                .onSignal(ChildFailed.class, f -> serving(expertStopped(hosted, f.getRef(), cause(f), null)))
                .onSignal(Terminated.class, t -> serving(expertStopped(hosted, t.getRef(), "without a failure", null)))
                .onMessage(RoundDone.class, d -> Behaviors.same())
                .onMessage(RoundFailed.class, f -> Behaviors.same())
                .build();
    }

    /** A request is being gathered by {@code round}: the node answers it when the round reports. */
    private Behavior<Command> busy(Hosted hosted, ExpertRequest request, long round, ActorRef<ExpertRound.Message> gathering) {
        return Behaviors.receive(Command.class)
                .onMessage(Request.class, r -> {
                    reply(r.request(), failed("a " + lower(r.request()) + " arrived while " + lower(request) + " is in flight"));
                    return Behaviors.same();
                })
                .onMessage(Relay.class, r -> {
                    r.round().tell(new ExpertRound.Answer(r.reply()));
                    return Behaviors.same();
                })
                .onMessage(RoundDone.class, d -> {
                    if (d.round() != round) return Behaviors.same();
                    Hosted next = answered(hosted, request, d.replies());
                    return serving(next);
                })
                .onMessage(RoundFailed.class, f -> {
                    if (f.round() != round) return Behaviors.same();
                    reply(request, failed(f.message()));
                    return serving(hosted);
                })
                .onSignal(ChildFailed.class, f -> busy(expertStopped(hosted, f.getRef(), cause(f), gathering), request, round, gathering))
                .onSignal(Terminated.class, t -> {
                    if (!hosted.experts().containsValue(t.getRef())) return Behaviors.same(); // a round ended
                    return busy(expertStopped(hosted, t.getRef(), "without a failure", gathering), request, round, gathering);
                })
                .build();
    }

    /** An init on a node with experts: stop them all, then start the new ones. */
    private Behavior<Command> stopping(Hosted hosted, ExpertRequest init) {
        if (hosted.experts().isEmpty()) return start(init);
        List<ActorRef<ExpertActor.Command>> remaining = new ArrayList<>(hosted.experts().values());
        for (ActorRef<ExpertActor.Command> e : remaining) ctx.stop(e);
        return Behaviors.receive(Command.class)
                .onMessage(Request.class, r -> {
                    reply(r.request(), failed("a " + lower(r.request()) + " arrived while the node resets for an init"));
                    return Behaviors.same();
                })
                .onMessage(RoundDone.class, d -> Behaviors.same())
                .onMessage(RoundFailed.class, f -> Behaviors.same())
                .onMessage(Relay.class, r -> Behaviors.same())
                .onSignal(Terminated.class, t -> {
                    remaining.remove(t.getRef());
                    return remaining.isEmpty() ? start(init) : Behaviors.same();
                })
                .build();
    }

    private static String cause(ChildFailed f) {
        return f.getCause() instanceof ActorInitializationException start && start.getCause() != null
                ? "could not start: " + ExpertActor.describe(start.getCause()) : ExpertActor.describe(f.getCause());
    }

    /** An expert's actor is gone: the round in flight (if any) fails naming it; later requests are refused. */
    private Hosted expertStopped(Hosted hosted, ActorRef<Void> ref, String why, ActorRef<ExpertRound.Message> gathering) {
        Integer expert = null;
        for (Map.Entry<Integer, ActorRef<ExpertActor.Command>> e : hosted.experts().entrySet()) if (e.getValue().equals(ref)) expert = e.getKey();
        if (expert == null || hosted.stopped().containsKey(expert)) return hosted;
        hosted.stopped().put(expert, why);
        ctx.getLog().error("{}: expert {} stopped ({})", name, expert, why);
        if (gathering != null) gathering.tell(new ExpertRound.Gone(expert, why));
        return hosted;
    }

    /** The coordinator's answer to a request from its experts' replies, in expert order. */
    private Hosted answered(Hosted hosted, ExpertRequest request, List<ExpertActor.Reply> replies) {
        CoordinatorEvent.Builder event = CoordinatorEvent.newBuilder().setFrom(name);
        Hosted next = hosted;
        switch (request.getRequestCase()) {
            case INIT -> event.setExpertsReady(ExpertsReady.newBuilder().addAllExperts(hosted.experts().keySet()));
            case REDUCE -> {
                Reduced.Builder r = Reduced.newBuilder().setStep(request.getReduce().getStep());
                for (ExpertActor.Reply reply : replies) {
                    ExpertActor.Reduced x = (ExpertActor.Reduced) reply;
                    for (int i = 0; i < x.norms().length; i++) {
                        r.addNorms(ParameterNorm.newBuilder().setParameter(x.parameters().get(i)).setNorm(x.norms()[i]));
                    }
                }
                event.setReduced(r);
            }
            case APPLY -> {
                long now = System.nanoTime();
                ExpertDataPlane.Traffic traffic = dataPlane.traffic();
                event.setApplied(Applied.newBuilder().setStep(request.getApply().getStep()).setStats(stats(hosted, replies, now, traffic)));
                next = new Hosted(hosted.experts(), hosted.stopped(), now, traffic);
            }
            case CHECKPOINT -> {
                Checkpointed.Builder c = Checkpointed.newBuilder().setStep(request.getCheckpoint().getStep());
                for (ExpertActor.Reply reply : replies) c.addFiles(((ExpertActor.Checkpointed) reply).file());
                event.setCheckpointed(c);
            }
            case RESTORE -> event.setRestored(Restored.newBuilder().setStep(request.getRestore().getStep()));
            default -> throw new IllegalStateException("no answer for " + request.getRequestCase());
        }
        reply(request, event.build());
        return next;
    }

    /**
     * The step's time and traffic since the previous Applied: compute summed over the node's
     * experts (they share the node's cores), transfer the time sending replies, wait the rest of
     * the wall time.
     */
    private static NodeStats stats(Hosted hosted, List<ExpertActor.Reply> replies, long now, ExpertDataPlane.Traffic traffic) {
        ExpertDataPlane.Traffic last = hosted.lastTraffic();
        Map<Integer, DeviceStats.Builder> devices = new TreeMap<>();
        long compute = 0;
        for (ExpertActor.Reply r : replies) {
            ExpertActor.Applied a = (ExpertActor.Applied) r;
            compute += a.computeNanos();
            DeviceStats.Builder d = devices.computeIfAbsent(a.device(), k -> DeviceStats.newBuilder().setDevice(k));
            d.addExperts(a.expert()).setComputeS(d.getComputeS() + a.computeNanos() / 1e9);
        }
        long send = traffic.sendNanos() - last.sendNanos(), wall = now - hosted.lastApplied();
        NodeStats.Builder s = NodeStats.newBuilder().setRole("expert").setComputeS(compute / 1e9).setTransferS(send / 1e9)
                .setWaitS(Math.max(0, wall - compute - send) / 1e9)
                .setBytesSent(traffic.bytesSent() - last.bytesSent()).setBytesReceived(traffic.bytesReceived() - last.bytesReceived())
                .setFramesSent(traffic.framesSent() - last.framesSent()).setFramesReceived(traffic.framesReceived() - last.framesReceived());
        traffic.dropped().forEach((k, v) -> {
            long d = v - last.dropped().getOrDefault(k, 0L);
            if (d > 0) s.putFramesDropped(k, d);
        });
        for (DeviceStats.Builder d : devices.values()) s.addDevices(d);
        return s.build();
    }

    private static String lower(ExpertRequest request) {
        return request.getRequestCase().name().toLowerCase(Locale.ROOT);
    }

    private CoordinatorEvent failed(String message) {
        return CoordinatorEvent.newBuilder().setFrom(name).setFailed(Failed.newBuilder().setMessage(name + ": " + message)).build();
    }

    private void reply(ExpertRequest request, CoordinatorEvent event) {
        ActorRef<CoordinatorEvent> to = resolver.resolveActorRef(request.getReplyTo());
        to.tell(event);
    }
}
