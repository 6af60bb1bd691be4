package dev.moelora.cluster.runtime;

import dev.moelora.cluster.run.RunConfig;
import dev.moelora.model.train.ExampleSampler;
import dev.moelora.proto.control.ExpertRequest;
import dev.moelora.proto.control.NodeAnnouncement;
import dev.moelora.proto.control.RouterRequest;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
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
 * address.
 */
public final class ClusterCoordinator {
    private ClusterCoordinator() {}

    private sealed interface Event {}

    private record Announced(NodeAnnouncement announcement) implements Event {}

    private record Member(ClusterEvent.ClusterDomainEvent event) implements Event {}

    public static ExpertParallelRun.Outcome run(RunConfig config, ExampleSampler sampler, String save, ExpertParallelRun.Listener listener,
                                                PrintStream out) {
        int wantRouters = config.integer("runtime.routers"), wantExperts = config.integer("runtime.expert-nodes");
        CompletableFuture<ExpertParallelRun.Outcome> result = new CompletableFuture<>();
        Behavior<Event> root = Behaviors.setup(ctx -> {
            ActorRef<NodeAnnouncement> inbox = ctx.messageAdapter(NodeAnnouncement.class, Announced::new);
            ctx.getSystem().receptionist().tell(Receptionist.register(ClusterNode.COORDINATOR, inbox));
            ActorRef<ClusterEvent.ClusterDomainEvent> members = ctx.messageAdapter(ClusterEvent.ClusterDomainEvent.class, Member::new);
            Cluster.get(ctx.getSystem()).subscriptions().tell(Subscribe.create(members, ClusterEvent.ClusterDomainEvent.class));
            out.printf("coordinator at %s: waiting for %d router(s) and %d expert node(s)%n",
                    Cluster.get(ctx.getSystem()).selfMember().address(), wantRouters, wantExperts);
            ActorRefResolver resolver = ActorRefResolver.get(ctx.getSystem());
            List<ExpertParallelRun.RouterNode> routers = new ArrayList<>();
            List<ExpertParallelRun.ExpertNode> experts = new ArrayList<>();
            Map<Address, String> nodes = new HashMap<>();
            @SuppressWarnings("unchecked")
            ActorRef<ExpertParallelRun.Command>[] run = new ActorRef[1];
            return Behaviors.receive(Event.class)
                    .onMessage(Announced.class, a -> {
                        NodeAnnouncement n = a.announcement();
                        if (run[0] != null) {
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
                        out.printf("coordinator: %s joined (%d/%d routers, %d/%d expert nodes)%n", n.getName(), routers.size(), wantRouters,
                                experts.size(), wantExperts);
                        if (routers.size() == wantRouters && experts.size() == wantExperts) {
                            run[0] = ctx.spawn(ExpertParallelRun.create(config, System.nanoTime(), routers, experts, sampler, save, listener, result), "run");
                        }
                        return Behaviors.same();
                    })
                    .onMessage(Member.class, m -> {
                        Address lost = null;
                        if (m.event() instanceof ClusterEvent.UnreachableMember u) lost = u.member().address();
                        if (m.event() instanceof ClusterEvent.MemberRemoved r) lost = r.member().address();
                        if (lost != null && nodes.containsKey(lost) && run[0] != null) {
                            run[0].tell(new ExpertParallelRun.NodeLost(nodes.get(lost) + " (" + lost + ")"));
                        }
                        return Behaviors.same();
                    })
                    .build();
        });
        ActorSystem<Event> system = ActorSystem.create(root, "moelora", ClusterNode.clusterSettings(config, config.integer("cluster.port")));
        try {
            return ExpertParallelJob.outcome(result);
        } finally {
            ClusterNode.stop(system, 30);
        }
    }
}
