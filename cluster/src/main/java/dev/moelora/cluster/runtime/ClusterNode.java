package dev.moelora.cluster.runtime;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.proto.control.DataEndpoint;
import dev.moelora.proto.control.NodeAnnouncement;
import dev.moelora.proto.control.RunEnded;
import dev.moelora.proto.control.RunEndedSeen;
import dev.moelora.proto.frame.ChannelSettings;
import dev.moelora.proto.frame.DataPlane;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * A router or expert node of a Pekko Cluster (`moelora node --role router|expert`): joins the
 * cluster at the configured seed nodes, starts its data plane on UDP host:data-port, announces
 * itself to the coordinator it finds through the receptionist, then serves the coordinator's
 * requests until the coordinator says the run ended (the process exits 0 when it succeeded, 1
 * when it failed) or leaves without saying so (exit 1).
 */
public final class ClusterNode {
    /** Where nodes find the coordinator: it registers its announcement inbox under this key. */
    public static final ServiceKey<NodeAnnouncement> COORDINATOR = ServiceKey.create(NodeAnnouncement.class, "moelora-coordinator");

    private ClusterNode() {}

    /** Pekko settings of a cluster member at the config's cluster.host and cluster.port. */
    public static Config clusterSettings(RunConfig config, int port) {
        return ConfigFactory.empty()
                .withValue("pekko.actor.provider", ConfigValueFactory.fromAnyRef("cluster"))
                .withValue("pekko.remote.artery.canonical.hostname", ConfigValueFactory.fromAnyRef(config.string("cluster.host")))
                .withValue("pekko.remote.artery.canonical.port", ConfigValueFactory.fromAnyRef(port))
                .withValue("pekko.cluster.seed-nodes", ConfigValueFactory.fromIterable(config.strings("cluster.seed-nodes")))
                .withValue("pekko.cluster.jmx.multi-mbeans-in-same-jvm", ConfigValueFactory.fromAnyRef("on"))
                .withFallback(ExpertParallelJob.actorSettings());
    }

    private sealed interface Event {}

    private record Listing(Receptionist.Listing listing) implements Event {}

    private record Ended(RunEnded ended) implements Event {}

    /**
     * Runs a node until its run ends; returns the process exit code: 0 when the coordinator said
     * the run succeeded, 1 when it said the run failed or left without saying.
     */
    public static int run(String role, RunConfig config, PrintStream out) throws Exception {
        if (!role.equals("router") && !role.equals("expert")) {
            throw new IllegalArgumentException("--role must be router, expert or coordinator; got '" + role + "'");
        }
        String host = config.string("cluster.host");
        int dataPort = config.integer("cluster.data-port");
        ChannelSettings channels = new ChannelSettings((int) config.bytes("runtime.term-length"), config.integer("runtime.mtu"));
        String channel = channels.udp(host, dataPort);
        int stream = role.equals("router") ? 2000 : 1000;
        List<AutoCloseable> planes = new ArrayList<>();
        int[] exitCode = {1};
        try (DataPlane media = Nodes.media(config)) {
            Behavior<Event> root = Behaviors.setup(ctx -> {
                String name = role + "@" + host + ":" + dataPort;
                DataEndpoint endpoint = Nodes.endpoint(channel, stream);
                String replyTo;
                ActorRefResolver resolver = ActorRefResolver.get(ctx.getSystem());
                if (role.equals("router")) {
                    var started = Nodes.router(ctx, media, "router", channel, stream, config);
                    planes.add(started.dataPlane());
                    replyTo = resolver.toSerializationFormat(started.handle().ref());
                } else {
                    var started = Nodes.experts(ctx, media, "experts", channel, stream, config);
                    planes.add(started.dataPlane());
                    replyTo = resolver.toSerializationFormat(started.handle().ref());
                }
                ActorRef<RunEnded> control = ctx.messageAdapter(RunEnded.class, Ended::new);
                NodeAnnouncement hello = NodeAnnouncement.newBuilder().setRole(role).setReplyTo(replyTo).setEndpoint(endpoint)
                        .setDevices(config.integer("runtime.devices")).setName(name)
                        .setControl(resolver.toSerializationFormat(control)).build();
                ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class, Listing::new);
                ctx.getSystem().receptionist().tell(Receptionist.subscribe(COORDINATOR, listings));
                out.printf("%s: data plane %s stream %d; waiting for a coordinator (seed nodes %s)%n", name, channel, stream,
                        config.strings("cluster.seed-nodes"));
                boolean[] served = {false};
                return Behaviors.receive(Event.class)
                        .onMessage(Listing.class, l -> {
                            var coordinators = l.listing().getServiceInstances(COORDINATOR);
                            if (coordinators.isEmpty() && served[0]) {
                                out.println(name + ": the coordinator left before the run ended; stopping");
                                return Behaviors.stopped();
                            }
                            for (ActorRef<NodeAnnouncement> c : coordinators) {
                                c.tell(hello);
                                served[0] = true;
                                out.println(name + ": announced to " + c.path().address());
                            }
                            return Behaviors.same();
                        })
                        .onMessage(Ended.class, e -> {
                            RunEnded ended = e.ended();
                            ActorRef<RunEndedSeen> ack = resolver.resolveActorRef(ended.getReplyTo());
                            ack.tell(RunEndedSeen.newBuilder().setNode(name).build());
                            exitCode[0] = ended.getFailed() ? 1 : 0;
                            out.println(name + (ended.getFailed() ? ": the run failed: " + ended.getMessage() : ": the run finished") + "; stopping");
                            return Behaviors.stopped();
                        })
                        .build();
            });
            ActorSystem<Event> system = ActorSystem.create(root, "moelora", clusterSettings(config, config.integer("cluster.port")));
            system.getWhenTerminated().toCompletableFuture().get();
            return exitCode[0];
        } finally {
            Nodes.closeAll(planes);
        }
    }

    /** Waits up to {@code seconds} for a system to stop after terminate(). */
    static void stop(ActorSystem<?> system, int seconds) {
        system.terminate();
        try {
            system.getWhenTerminated().toCompletableFuture().get(seconds, TimeUnit.SECONDS);
        } catch (Exception e) {
            org.slf4j.LoggerFactory.getLogger(ClusterNode.class).warn("the actor system did not stop within {} s: {}", seconds, e.toString());
        }
    }
}
