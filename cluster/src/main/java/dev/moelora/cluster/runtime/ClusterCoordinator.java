package dev.moelora.cluster.runtime;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.Preemption;
import dev.moelora.model.train.ExampleOrder;
import dev.moelora.proto.control.ExpertRequest;
import dev.moelora.proto.control.NodeAnnouncement;
import dev.moelora.proto.control.RouterRequest;
import dev.moelora.proto.control.RunEnded;
import dev.moelora.proto.control.RunEndedSeen;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * The coordinator node of a cluster run (`moelora node --role coordinator`, or `moelora train`
 * with runtime.mode = cluster): joins the cluster, registers where nodes announce themselves,
 * waits for the configured routers and expert nodes, then runs {@link ExpertParallelRun} over
 * them. A node that becomes unreachable or leaves while the run is on is reported to the run
 * (which recovers without it); a node that announces itself later is a spare the run may take;
 * the run downs the nodes it gives up on through Pekko Cluster. When the run ends, every node is told how (so a node process exits 0 or 1 with the
 * run) and acknowledges before the coordinator leaves; nodes that do not answer within
 * {@link #ACK_TIMEOUT} are left to notice the coordinator is gone.
 */
public final class ClusterCoordinator {
    static final Duration ACK_TIMEOUT = Duration.ofSeconds(10);

    private ClusterCoordinator() {}

    private sealed interface Event {}

    private record Announced(NodeAnnouncement announcement) implements Event {}

    private record Member(ClusterEvent.ClusterDomainEvent event) implements Event {}

    private record Finished(ExpertParallelRun.Outcome outcome, Throwable failure) implements Event {}

    private record Seen(RunEndedSeen seen) implements Event {}

    private record AckTimeout() implements Event {}

    private record PollPreemption() implements Event {}

    /**
     * @param preemption when requested (SIGTERM), the run checkpoints at its next step boundary and
     *                   ends; before every node joined there is nothing to save and the run fails
     */
    public static ExpertParallelRun.Outcome run(RunConfig config, ExampleOrder sampler, java.nio.file.Path evaluationDir,
                                                ExpertParallelRun.Listener listener, ExpertParallelRun.Checkpoints checkpoints, PrintStream out,
                                                Preemption preemption) {
        CompletableFuture<ExpertParallelRun.Outcome> done = new CompletableFuture<>();
        Behavior<Event> root = Behaviors.setup(ctx -> new Gathering(ctx, config, sampler, evaluationDir, listener, checkpoints, out, done, preemption).behavior());
        ActorSystem<Event> system = ActorSystem.create(root, "moelora", ClusterNode.clusterSettings(config, config.integer("cluster.port")));
        try {
            return ExpertParallelJob.outcome(done);
        } finally {
            ClusterNode.stop(system, 30);
        }
    }

    /** Gathers the nodes, runs, then tells every node how the run ended. */
    private static final class Gathering {
        private final ActorContext<Event> ctx;
        private final RunConfig config;
        private final ExampleOrder sampler;
        private final ExpertParallelRun.Listener listener;
        private final ExpertParallelRun.Checkpoints checkpoints;
        private final PrintStream out;
        private final CompletableFuture<ExpertParallelRun.Outcome> done;
        private final int wantRouters, wantExperts;
        private final ActorRefResolver resolver;
        private final List<ExpertParallelRun.RouterNode> routers = new ArrayList<>();
        private final List<ExpertParallelRun.ExpertNode> experts = new ArrayList<>();
        private final Map<Address, String> nodes = new HashMap<>();
        private final Map<String, Address> addresses = new HashMap<>();
        private final List<ExpertParallelRun.Node> spares = new ArrayList<>();
        private final Map<String, ActorRef<RunEnded>> controls = new HashMap<>();
        private ActorRef<ExpertParallelRun.Command> run;
        private final Preemption preemption;
        private final java.nio.file.Path evaluationDir;

        Gathering(ActorContext<Event> ctx, RunConfig config, ExampleOrder sampler, java.nio.file.Path evaluationDir, ExpertParallelRun.Listener listener,
                  ExpertParallelRun.Checkpoints checkpoints, PrintStream out, CompletableFuture<ExpertParallelRun.Outcome> done,
                  Preemption preemption) {
            this.preemption = preemption;
            this.evaluationDir = evaluationDir;
            this.ctx = ctx;
            this.config = config;
            this.sampler = sampler;
            this.listener = listener;
            this.checkpoints = checkpoints;
            this.out = out;
            this.done = done;
            this.wantRouters = config.integer("runtime.routers");
            this.wantExperts = config.integer("runtime.expert-nodes");
            this.resolver = ActorRefResolver.get(ctx.getSystem());
        }

        Behavior<Event> behavior() {
            ActorRef<NodeAnnouncement> inbox = ctx.messageAdapter(NodeAnnouncement.class, Announced::new);
            ctx.getSystem().receptionist().tell(Receptionist.register(ClusterNode.COORDINATOR, inbox));
            ActorRef<ClusterEvent.ClusterDomainEvent> members = ctx.messageAdapter(ClusterEvent.ClusterDomainEvent.class, Member::new);
            Cluster.get(ctx.getSystem()).subscriptions().tell(Subscribe.create(members, ClusterEvent.ClusterDomainEvent.class));
            out.printf("coordinator at %s: waiting for %d router(s) and %d expert node(s)%n",
                    Cluster.get(ctx.getSystem()).selfMember().address(), wantRouters, wantExperts);
            return Behaviors.withTimers(timers -> {
                timers.startTimerWithFixedDelay(new PollPreemption(), ExpertParallelJob.PREEMPTION_POLL);
                return gathering();
            });
        }

        private Behavior<Event> gathering() {
            return Behaviors.receive(Event.class)
                    .onMessage(Announced.class, a -> announced(a.announcement()))
                    .onMessage(Member.class, m -> member(m.event()))
                    .onMessage(Finished.class, f -> ending(f))
                    .onMessage(PollPreemption.class, p -> {
                        if (run == null && preemption.requested()) {
                            done.completeExceptionally(new IllegalStateException("preempted before every node joined; nothing to save"));
                        }
                        return Behaviors.same();
                    })
                    .build();
        }

        private Behavior<Event> announced(NodeAnnouncement n) {
            ExpertParallelRun.Node node;
            if (n.getRole().equals("router")) {
                ActorRef<RouterRequest> ref = resolver.resolveActorRef(n.getReplyTo());
                node = new ExpertParallelRun.RouterNode(n.getName(), ref, n.getEndpoint());
                addresses.put(n.getName(), ref.path().address());
                nodes.put(ref.path().address(), n.getName());
            } else if (n.getRole().equals("expert")) {
                ActorRef<ExpertRequest> ref = resolver.resolveActorRef(n.getReplyTo());
                node = new ExpertParallelRun.ExpertNode(n.getName(), ref, n.getEndpoint(), n.getDevices());
                addresses.put(n.getName(), ref.path().address());
                nodes.put(ref.path().address(), n.getName());
            } else {
                out.println("coordinator: " + n.getName() + " announced the role '" + n.getRole() + "'; not used");
                return Behaviors.same();
            }
            if (!n.getControl().isEmpty()) controls.put(n.getName(), resolver.resolveActorRef(n.getControl()));
            if (run != null) {
                out.println("coordinator: " + n.getName() + " (" + n.getRole() + ") joined while the run is on: a spare for recovery");
                run.tell(new ExpertParallelRun.NodeJoined(node));
                return Behaviors.same();
            }
            if (node instanceof ExpertParallelRun.RouterNode r && routers.size() < wantRouters) routers.add(r);
            else if (node instanceof ExpertParallelRun.ExpertNode e && experts.size() < wantExperts) experts.add(e);
            else {
                out.println("coordinator: " + n.getName() + " (" + n.getRole() + ") is not needed yet; kept as a spare");
                spares.add(node);
                return Behaviors.same();
            }
            out.printf("coordinator: %s joined (%d/%d routers, %d/%d expert nodes)%n", n.getName(), routers.size(), wantRouters,
                    experts.size(), wantExperts);
            if (routers.size() == wantRouters && experts.size() == wantExperts) {
                CompletableFuture<ExpertParallelRun.Outcome> result = new CompletableFuture<>();
                ExpertParallelRun.Membership membership = name -> {
                    Address a = addresses.get(name);
                    if (a != null) Cluster.get(ctx.getSystem()).manager().tell(new Down(a));
                };
                run = ctx.spawn(ExpertParallelRun.create(config, System.nanoTime(), routers, experts, sampler, evaluationDir, listener, checkpoints, membership,
                        result), "run");
                for (ExpertParallelRun.Node spare : spares) run.tell(new ExpertParallelRun.NodeJoined(spare));
                ctx.spawn(ExpertParallelJob.watching(preemption, run), "preemption");
                result.whenComplete((o, e) -> ctx.getSelf().tell(new Finished(o, e)));
            }
            return Behaviors.same();
        }

        private Behavior<Event> member(ClusterEvent.ClusterDomainEvent event) {
            Address lost = null;
            String why = null;
            if (event instanceof ClusterEvent.UnreachableMember u) {
                lost = u.member().address();
                why = "unreachable at " + lost + " (Pekko Cluster's failure detector)";
            }
            if (event instanceof ClusterEvent.MemberRemoved r) {
                lost = r.member().address();
                why = "removed from the cluster at " + lost;
            }
            if (lost != null && nodes.containsKey(lost)) {
                String name = nodes.get(lost);
                controls.remove(name);
                spares.removeIf(s -> s.name().equals(name));
                if (run != null) run.tell(new ExpertParallelRun.NodeLost(name, why));
            }
            return Behaviors.same();
        }

        /** Tells every reachable node how the run ended and waits for their acknowledgements (or the timeout). */
        private Behavior<Event> ending(Finished f) {
            Throwable cause = f.failure() instanceof java.util.concurrent.CompletionException c && c.getCause() != null ? c.getCause() : f.failure();
            ActorRef<RunEndedSeen> acks = ctx.messageAdapter(RunEndedSeen.class, Seen::new);
            RunEnded ended = RunEnded.newBuilder().setReplyTo(resolver.toSerializationFormat(acks)).setFailed(cause != null)
                    .setMessage(cause == null ? "" : String.valueOf(cause.getMessage())).build();
            Set<String> waiting = new HashSet<>(controls.keySet());
            for (ActorRef<RunEnded> c : controls.values()) c.tell(ended);
            Runnable finish = () -> {
                if (cause != null) done.completeExceptionally(cause);
                else done.complete(f.outcome());
            };
            if (waiting.isEmpty()) {
                finish.run();
                return Behaviors.same();
            }
            return Behaviors.withTimers(timers -> {
                timers.startSingleTimer(new AckTimeout(), ACK_TIMEOUT);
                return Behaviors.receive(Event.class)
                        .onMessage(Seen.class, s -> {
                            waiting.remove(s.seen().getNode());
                            if (waiting.isEmpty()) finish.run();
                            return Behaviors.same();
                        })
                        .onMessage(AckTimeout.class, t -> {
                            if (!waiting.isEmpty()) {
                                out.println("coordinator: no acknowledgement of the run's end from " + waiting + " within " + ACK_TIMEOUT.toSeconds() + " s");
                                finish.run();
                            }
                            return Behaviors.same();
                        })
                        .onMessage(Member.class, m -> Behaviors.same())
                        .onMessage(Announced.class, a -> Behaviors.same())
                        .build();
            });
        }
    }
}
