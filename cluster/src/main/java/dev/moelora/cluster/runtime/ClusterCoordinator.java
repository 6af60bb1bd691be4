package dev.moelora.cluster.runtime;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.train.ExampleSampler;
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
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * The coordinator node of a cluster run (`moelora node --role coordinator`, or `moelora train`
 * with runtime.mode = cluster): joins the cluster, registers where nodes announce themselves,
 * waits for the configured routers and expert nodes, then runs {@link ExpertParallelRun} over
 * them. A node that becomes unreachable or leaves while the run is on fails the run with its
 * address. When the run ends, every node is told how (so a node process exits 0 or 1 with the
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

    public static ExpertParallelRun.Outcome run(RunConfig config, ExampleSampler sampler, String save, ExpertParallelRun.Listener listener,
                                                PrintStream out) {
        CompletableFuture<ExpertParallelRun.Outcome> done = new CompletableFuture<>();
        Behavior<Event> root = Behaviors.setup(ctx -> new Gathering(ctx, config, sampler, save, listener, out, done).behavior());
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
        private final ExampleSampler sampler;
        private final String save;
        private final ExpertParallelRun.Listener listener;
        private final PrintStream out;
        private final CompletableFuture<ExpertParallelRun.Outcome> done;
        private final int wantRouters, wantExperts;
        private final ActorRefResolver resolver;
        private final List<ExpertParallelRun.RouterNode> routers = new ArrayList<>();
        private final List<ExpertParallelRun.ExpertNode> experts = new ArrayList<>();
        private final Map<Address, String> nodes = new HashMap<>();
        private final Map<String, ActorRef<RunEnded>> controls = new HashMap<>();
        private ActorRef<ExpertParallelRun.Command> run;

        Gathering(ActorContext<Event> ctx, RunConfig config, ExampleSampler sampler, String save, ExpertParallelRun.Listener listener,
                  PrintStream out, CompletableFuture<ExpertParallelRun.Outcome> done) {
            this.ctx = ctx;
            this.config = config;
            this.sampler = sampler;
            this.save = save;
            this.listener = listener;
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
            return Behaviors.receive(Event.class)
                    .onMessage(Announced.class, a -> announced(a.announcement()))
                    .onMessage(Member.class, m -> member(m.event()))
                    .onMessage(Finished.class, f -> ending(f))
                    .build();
        }

        private Behavior<Event> announced(NodeAnnouncement n) {
            if (run != null) {
                out.println("coordinator: " + n.getName() + " announced itself after the run started; not used");
                return Behaviors.same();
            }
            if (n.getRole().equals("router") && routers.size() < wantRouters) {
                ActorRef<RouterRequest> ref = resolver.resolveActorRef(n.getReplyTo());
                routers.add(new ExpertParallelRun.RouterNode(n.getName(), ref, n.getEndpoint()));
                nodes.put(ref.path().address(), n.getName());
            } else if (n.getRole().equals("expert") && experts.size() < wantExperts) {
                ActorRef<ExpertRequest> ref = resolver.resolveActorRef(n.getReplyTo());
                experts.add(new ExpertParallelRun.ExpertNode(n.getName(), ref, n.getEndpoint(), n.getDevices()));
                nodes.put(ref.path().address(), n.getName());
            } else {
                out.println("coordinator: " + n.getName() + " (" + n.getRole() + ") is not needed; not used");
                return Behaviors.same();
            }
            if (!n.getControl().isEmpty()) controls.put(n.getName(), resolver.resolveActorRef(n.getControl()));
            out.printf("coordinator: %s joined (%d/%d routers, %d/%d expert nodes)%n", n.getName(), routers.size(), wantRouters,
                    experts.size(), wantExperts);
            if (routers.size() == wantRouters && experts.size() == wantExperts) {
                CompletableFuture<ExpertParallelRun.Outcome> result = new CompletableFuture<>();
                run = ctx.spawn(ExpertParallelRun.create(config, System.nanoTime(), routers, experts, sampler, save, listener, result), "run");
                result.whenComplete((o, e) -> ctx.getSelf().tell(new Finished(o, e)));
            }
            return Behaviors.same();
        }

        private Behavior<Event> member(ClusterEvent.ClusterDomainEvent event) {
            Address lost = null;
            if (event instanceof ClusterEvent.UnreachableMember u) lost = u.member().address();
            if (event instanceof ClusterEvent.MemberRemoved r) lost = r.member().address();
            if (lost != null && nodes.containsKey(lost)) {
                controls.remove(nodes.get(lost));
                if (run != null) run.tell(new ExpertParallelRun.NodeLost(nodes.get(lost) + " (" + lost + ")"));
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
