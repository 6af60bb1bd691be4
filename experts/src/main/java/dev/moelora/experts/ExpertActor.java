package dev.moelora.experts;

import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One MoELoRA expert: its A and B for every adapted module and layer, their AdamW state and
 * gradient slots ({@link ExpertState}), on its own pinned thread bound to one device. It answers
 * the routers' dispatches (rows in, H out; dL/dH in, dL/dX out) over Aeron, and the
 * coordinator's step commands (reduce, apply, save) over Pekko. It must be spawned on a pinned
 * dispatcher: its computation blocks its thread. It never sees the trunk or the gates.
 *
 * <p>A dispatch it cannot compute is answered with a FAILURE frame carrying the cause, and the
 * expert goes on serving. A step command that throws stops the actor; its {@link ExpertNode}
 * watches it and fails the request with the cause.
 */
public final class ExpertActor {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertActor.class);

    public sealed interface Command {}

    /** Rows for a module are in this expert's input buffer (told by the node's data plane). */
    public record Compute(TensorFrameHeader header) implements Command {}

    /** Sum this step's micro-batch gradient slots in order; reply with every parameter's gradient norm. */
    public record Reduce(int microBatches, ActorRef<Reduced> replyTo) implements Command {}

    public record Reduced(int expert, List<String> parameters, double[] norms) {}

    /** Clip by the global factor and take an AdamW step. */
    public record Apply(double lr, double clipFactor, ActorRef<Applied> replyTo) implements Command {}

    public record Applied(int expert) {}

    /** Write the expert's tensors to {@code directory/expert-<e>.safetensors}. */
    public record Save(Path directory, ActorRef<Saved> replyTo) implements Command {}

    public record Saved(int expert, Path file) {}

    /** Sent to the node once the expert's state exists on its device and its buffers are registered. */
    public record Started(int expert, int device, ActorRef<Command> self) {}

    /** What an expert needs to start: which expert, where, and the run it belongs to. */
    public record Setup(long runId, int expert, int device, List<MoeLora.ModuleShape> modules, MoeLoraConfig config,
                        long adapterSeed, double weightDecay, int microBatches, ExpertDataPlane dataPlane) {}

    private ExpertActor() {}

    public static Behavior<Command> create(Setup setup, ActorRef<Started> started) {
        return Behaviors.setup(ctx -> {
            DeviceSlots.bind(setup.device());
            ExpertState state = new ExpertState(setup.expert(), setup.modules(), setup.config(), setup.adapterSeed(),
                    setup.weightDecay(), setup.microBatches());
            setup.dataPlane().register(state, ctx.getSelf());
            started.tell(new Started(setup.expert(), setup.device(), ctx.getSelf()));
            return Behaviors.receive(Command.class)
                    .onMessage(Compute.class, c -> {
                        compute(setup, state, c.header());
                        return Behaviors.same();
                    })
                    .onMessage(Reduce.class, r -> {
                        double[] norms = state.reduce(r.microBatches());
                        r.replyTo().tell(new Reduced(state.expert(), state.parameters().stream().map(Parameter::name).toList(), norms));
                        return Behaviors.same();
                    })
                    .onMessage(Apply.class, a -> {
                        state.apply(a.lr(), a.clipFactor());
                        a.replyTo().tell(new Applied(state.expert()));
                        return Behaviors.same();
                    })
                    .onMessage(Save.class, s -> {
                        s.replyTo().tell(new Saved(state.expert(), save(state, s.directory())));
                        return Behaviors.same();
                    })
                    .build();
        });
    }

    private static void compute(Setup setup, ExpertState state, TensorFrameHeader in) {
        boolean backward = in.getDirection() == Direction.BACKWARD_INPUT;
        int slot = in.getMicroBatch(), module = in.getModule();
        long rows = in.getShape(0);
        ByteBuffer out;
        long cols;
        try {
            if (backward) {
                out = state.backward(slot, module, rows);
                cols = setup.modules().get(module).dIn();
            } else {
                out = state.forward(slot, module, rows);
                cols = setup.modules().get(module).dOut();
            }
        } catch (RuntimeException e) {
            // the router waiting for this answer fails its exchange at once with this text
            String failure = "expert " + state.expert() + " could not compute the " + (backward ? Direction.BACKWARD_OUTPUT : Direction.FORWARD_OUTPUT)
                    + " of module " + setup.modules().get(module).name() + " (layer " + in.getLayer() + ", step " + in.getStep()
                    + ", micro-batch " + slot + "): " + describe(e);
            LOG.error("{}; replied with a failure frame", failure, e);
            setup.dataPlane().replyFailure(in.getSource(), answerTo(in, state.expert()).build(), failure);
            return;
        }
        TensorFrameHeader reply = answerTo(in, state.expert())
                .setDirection(backward ? Direction.BACKWARD_OUTPUT : Direction.FORWARD_OUTPUT)
                .clearShape().addShape(rows).addShape(cols)
                .build();
        setup.dataPlane().reply(in.getSource(), reply, out);
    }

    /** The dispatch's address (run, step, micro-batch, layer, module, expert) with this expert as the source and no chunking. */
    private static TensorFrameHeader.Builder answerTo(TensorFrameHeader in, int expert) {
        return TensorFrameHeader.newBuilder(in).setSource(expert)
                .clearChunkIndex().clearChunkCount().clearChunkOffset().clearPayloadCrc32C();
    }

    /** The text a failure travels with: each cause's class and message, outermost first. */
    static String describe(Throwable e) {
        StringBuilder text = new StringBuilder();
        int depth = 0;
        for (Throwable t = e; t != null && depth < 8; t = t.getCause(), depth++) {
            if (depth > 0) text.append("; caused by ");
            text.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage());
        }
        return text.toString();
    }

    private static Path save(ExpertState state, Path directory) throws java.io.IOException {
        Files.createDirectories(directory);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (Parameter p : state.parameters()) tensors.put(p.name(), p.value());
        Path file = directory.resolve("expert-" + state.expert() + ".safetensors");
        Safetensors.write(file, tensors, Map.of("expert", Integer.toString(state.expert())));
        return file;
    }

}
