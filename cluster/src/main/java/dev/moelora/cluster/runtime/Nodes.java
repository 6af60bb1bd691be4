package dev.moelora.cluster.runtime;

import dev.moelora.cluster.setup.AdapterFamily;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.setup.RunSetup;
import dev.moelora.experts.ExpertDataPlane;
import dev.moelora.experts.ExpertNode;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.proto.control.DataEndpoint;
import dev.moelora.proto.control.ExpertRequest;
import dev.moelora.proto.control.RouterRequest;
import dev.moelora.router.RouterActor;
import dev.moelora.router.RouterDataPlane;
import dev.moelora.proto.frame.DataPlane;
import dev.moelora.proto.frame.IdleSettings;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.javadsl.ActorContext;

/**
 * Starts the router and expert-node actors of the expert-parallel runtime, with their data planes,
 * the same way in one JVM (runtime = local) and in a node JVM of a cluster: what differs is only
 * the Aeron channel (IPC or UDP) and who learns their references. Also the two bridges from the
 * run's configuration text to what routers and experts need.
 */
public final class Nodes {
    private Nodes() {}

    /** A started node: its handle for the coordinator and what must be closed with it. */
    public record Started<H>(H handle, AutoCloseable dataPlane) {}

    /** What an expert node reads from the configuration text. */
    public static ExpertNode.Settings expertSettings(String text) {
        RunConfig config = RunConfig.parse(text);
        TrainConfig train = RunSetup.trainConfig(config);
        return new ExpertNode.Settings(AdapterFamily.moeLora(config), train.seed(), train.weightDecay());
    }

    /**
     * @param name     the actor's name (unique in this JVM)
     * @param nodeName the node's name as it announces itself and signs its answers
     */
    public static Started<ExpertParallelRun.RouterNode> router(ActorContext<?> ctx, DataPlane media, String name, String nodeName, String channel,
                                                             int stream, RunConfig config) {
        RouterDataPlane plane = new RouterDataPlane(media, channel, stream, config.duration("runtime.frame-timeout"), idle(config));
        ActorRef<RouterActor.Command> router = ctx.spawn(RouterActor.create(nodeName, plane, RouterWorkloads.factory()), name,
                DispatcherSelector.fromConfig("moelora.router-dispatcher"));
        ActorRef<RouterRequest> requests = ctx.spawn(RouterActor.requests(router, plane), name + "-requests");
        return new Started<>(new ExpertParallelRun.RouterNode(nodeName, requests, endpoint(channel, stream)), plane);
    }

    /** As {@link #router}, for an expert node. */
    public static Started<ExpertParallelRun.ExpertNode> experts(ActorContext<?> ctx, DataPlane media, String name, String nodeName, String channel,
                                                              int stream, RunConfig config) {
        ExpertDataPlane plane = new ExpertDataPlane(media, channel, stream, config.integer("adapter.experts"),
                config.duration("runtime.frame-timeout"), idle(config));
        ActorRef<ExpertNode.Command> node = ctx.spawn(ExpertNode.create(nodeName, plane, Nodes::expertSettings, config.duration("runtime.timeout")),
                name);
        ActorRef<ExpertRequest> requests = ctx.spawn(ExpertNode.requests(node), name + "-requests");
        return new Started<>(new ExpertParallelRun.ExpertNode(nodeName, requests, endpoint(channel, stream), config.integer("runtime.devices")), plane);
    }

    /** The media driver runtime.aeron-driver and runtime.aeron-dir ask for. */
    static DataPlane media(RunConfig config) {
        String driver = config.string("runtime.aeron-driver"), dir = config.string("runtime.aeron-dir");
        return switch (driver) {
            case "embedded" -> dir.isEmpty() ? DataPlane.launchEmbedded(idle(config)) : DataPlane.launchEmbedded(java.nio.file.Path.of(dir), idle(config));
            case "external" -> {
                if (dir.isEmpty()) throw new IllegalArgumentException("runtime.aeron-driver = external needs runtime.aeron-dir (the driver's aeron.dir)");
                yield DataPlane.connect(dir);
            }
            default -> throw new IllegalArgumentException("runtime.aeron-driver must be embedded or external, got '" + driver + "'");
        };
    }

    /** How the embedded driver's thread and the pollers wait when idle: runtime.driver-idle-max-park and runtime.poll-idle-max-park. */
    static IdleSettings idle(RunConfig config) {
        try {
            return new IdleSettings(config.duration("runtime.driver-idle-max-park"), config.duration("runtime.poll-idle-max-park"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("runtime.driver-idle-max-park / runtime.poll-idle-max-park: " + e.getMessage(), e);
        }
    }

    static DataEndpoint endpoint(String channel, int stream) {
        return DataEndpoint.newBuilder().setChannel(channel).setStream(stream).build();
    }

    static void closeAll(List<AutoCloseable> closeables) {
        for (AutoCloseable c : closeables) {
            try {
                c.close();
            } catch (Exception e) {
                org.slf4j.LoggerFactory.getLogger(Nodes.class).warn("closing {}: {}", c, e.toString());
            }
        }
    }
}
