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
import java.util.concurrent.CompletionStage;
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
 * when it failed) or leaves without saying so (exit 1). A node told to stop (its parent process is
 * gone: {@link ParentWatch}) leaves the cluster and closes its data plane as at the end of a run (exit 1).
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
                // automatic downing: a member unreachable for cluster.downing-after is downed; the side with the oldest member
                // (the coordinator, the first to start) stays up
                .withValue("pekko.cluster.downing-provider-class", ConfigValueFactory.fromAnyRef("org.apache.pekko.cluster.sbr.SplitBrainResolverProvider"))
                .withValue("pekko.cluster.split-brain-resolver.active-strategy", ConfigValueFactory.fromAnyRef("keep-oldest"))
                .withValue("pekko.cluster.split-brain-resolver.stable-after",
                        ConfigValueFactory.fromAnyRef(config.duration("cluster.downing-after").toMillis() + "ms"))
                .withFallback(ExpertParallelJob.actorSettings());
    }

    private sealed interface Event {}

    private record Listing(Receptionist.Listing listing) implements Event {}

    private record Ended(RunEnded ended) implements Event {}

    private record WaitOver() implements Event {}

    private record StopRequested() implements Event {}

    /** How one membership of the cluster ended. */
    private enum Ending { SUCCEEDED, FAILED, COORDINATOR_LOST, NO_COORDINATOR, STOPPED }

    /**
     * Runs a node until its run ends; returns the process exit code: 0 when the coordinator said
     * the run succeeded, 1 when it said the run failed. A coordinator that leaves without saying
     * (killed, its machine gone) may be started again on the same run directory: the node then
     * leaves the cluster, joins again at the seed nodes and waits up to
     * {@code recovery.coordinator-wait} for the new coordinator (exit 1 when none comes). When
     * {@code stop} completes, the node leaves the cluster at once, whatever it was doing (exit 1).
     */
    public static int run(String role, RunConfig config, PrintStream out, CompletionStage<?> stop) throws Exception {
        if (!role.equals("router") && !role.equals("expert")) {
            throw new IllegalArgumentException("--role must be router, expert or coordinator; got '" + role + "'");
        }
        // SIGTERM (a scheduler preempting every task of the job, the coordinator's too): keep serving
        // until the run ends (the coordinator checkpoints and says so), then exit with the run's status
        java.util.concurrent.CountDownLatch ended = new java.util.concurrent.CountDownLatch(1);
        int[] status = {1};
        java.time.Duration grace = config.duration("checkpoint.preemption-timeout");
        Thread hook = new Thread(() -> {
            out.println(role + ": SIGTERM; serving until the run ends (at most " + grace.toSeconds() + " s: checkpoint.preemption-timeout)");
            try {
                if (!ended.await(grace.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) return;
            } catch (InterruptedException e) {
                return;
            }
            out.flush();
            System.err.flush();
            Runtime.getRuntime().halt(status[0]);
        }, "moelora-node-preemption");
        Runtime.getRuntime().addShutdownHook(hook);
        try (DataPlane media = Nodes.media(config)) {
            boolean waitedBefore = false;
            while (true) {
                Ending ending = member(role, config, media, out, waitedBefore ? config.duration("recovery.coordinator-wait") : null, stop);
                switch (ending) {
                    case SUCCEEDED -> { return status[0] = 0; }
                    case FAILED, NO_COORDINATOR, STOPPED -> { return status[0] = 1; }
                    case COORDINATOR_LOST -> {
                        waitedBefore = true;
                        out.println(role + ": joining the cluster again to wait up to " + config.duration("recovery.coordinator-wait").toSeconds()
                                + " s for a new coordinator (recovery.coordinator-wait)");
                    }
                }
            }
        } finally {
            ended.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs: it sees the run ended and halts with its status
            }
        }
    }

    /**
     * One membership: joins, serves the coordinator it finds until the run ends or the coordinator
     * goes, then leaves. With {@code wait} set, gives up when no coordinator appears within it;
     * when {@code stop} completes (before or during it), leaves at once.
     */
    private static Ending member(String role, RunConfig config, DataPlane media, PrintStream out, java.time.Duration wait,
                                 CompletionStage<?> stop) throws Exception {
        String host = config.string("cluster.host");
        int dataPort = config.integer("cluster.data-port");
        ChannelSettings channels = new ChannelSettings((int) config.bytes("runtime.term-length"), config.integer("runtime.mtu"));
        String channel = channels.udp(host, dataPort);
        int stream = role.equals("router") ? 2000 : 1000;
        List<AutoCloseable> planes = new ArrayList<>();
        Ending[] ending = {Ending.COORDINATOR_LOST};
        try {
            Behavior<Event> root = Behaviors.setup(ctx -> {
                String name = role + "@" + host + ":" + dataPort;
                DataEndpoint endpoint = Nodes.endpoint(channel, stream);
                String replyTo;
                ActorRefResolver resolver = ActorRefResolver.get(ctx.getSystem());
                if (role.equals("router")) {
                    var started = Nodes.router(ctx, media, "router", name, channel, stream, config);
                    planes.add(started.dataPlane());
                    replyTo = resolver.toSerializationFormat(started.handle().ref());
                } else {
                    var started = Nodes.experts(ctx, media, "experts", name, channel, stream, config);
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
                return Behaviors.withTimers(timers -> {
                    if (wait != null) timers.startSingleTimer(new WaitOver(), wait);
                    return Behaviors.receive(Event.class)
                            .onMessage(StopRequested.class, r -> {
                                ending[0] = Ending.STOPPED;
                                return Behaviors.stopped();
                            })
                            .onMessage(WaitOver.class, w -> {
                                if (served[0]) return Behaviors.same();
                                out.println(name + ": no coordinator within " + wait.toSeconds() + " s; stopping");
                                ending[0] = Ending.NO_COORDINATOR;
                                return Behaviors.stopped();
                            })
                            .onMessage(Listing.class, l -> {
                                var coordinators = l.listing().getServiceInstances(COORDINATOR);
                                if (coordinators.isEmpty() && served[0]) {
                                    out.println(name + ": the coordinator left before the run ended");
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
                                ending[0] = ended.getFailed() ? Ending.FAILED : Ending.SUCCEEDED;
                                out.println(name + (ended.getFailed() ? ": the run failed: " + ended.getMessage() : ": the run finished") + "; stopping");
                                return Behaviors.stopped();
                            })
                            .build();
                });
            });
            ActorSystem<Event> system = ActorSystem.create(root, "moelora", clusterSettings(config, config.integer("cluster.port")));
            stop.thenRun(() -> system.tell(new StopRequested()));
            system.getWhenTerminated().toCompletableFuture().get();
            return ending[0];
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
