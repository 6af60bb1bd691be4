package dev.moelora.experts;

import dev.moelora.model.checkpoint.StateFile;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.optim.Parameter;
import dev.moelora.proto.control.FileDigest;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One MoELoRA expert: its A and B for every adapted module and layer, their AdamW state and
 * gradient slots ({@link ExpertState}), on its own pinned thread bound to one device. It answers
 * the routers' dispatches (rows in, H out; dL/dH in, dL/dX out) over Aeron, and the
 * coordinator's step commands (reduce, apply, checkpoint, restore) over Pekko. It must be spawned on a pinned
 * dispatcher: its computation blocks its thread. It never sees the trunk or the gates.
 *
 * <p>A dispatch it cannot compute is answered with a FAILURE frame carrying the cause, and the
 * expert goes on serving. A step command that throws is answered with {@link StepFailed} and its
 * cause; an actor that dies anyway (its setup threw) is noticed by its {@link ExpertNode}, which
 * watches it.
 */
public final class ExpertActor {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertActor.class);

    public sealed interface Command {}

    /** Rows for a module are in this expert's input buffer (told by the node's data plane). */
    public record Compute(TensorFrameHeader header) implements Command {}

    /** Sum this step's micro-batch gradient slots in order; reply with every parameter's gradient norm. */
    public record Reduce(int microBatches, ActorRef<Reply> replyTo) implements Command {}

    /** Clip by the global factor and take an AdamW step. */
    public record Apply(double lr, double clipFactor, ActorRef<Reply> replyTo) implements Command {}

    /** Write the expert's tensors and AdamW state into the checkpoint directory. */
    public record Checkpoint(Path directory, ActorRef<Reply> replyTo) implements Command {}

    /** Load the expert's tensors and AdamW state from its file of a checkpoint, verified first. */
    public record Restore(Path directory, List<FileDigest> files, ActorRef<Reply> replyTo) implements Command {}

    /** What the expert answers the node; every request gets exactly one. */
    public sealed interface Reply {
        int expert();
    }

    public record Reduced(int expert, List<String> parameters, double[] norms) implements Reply {}

    /** @param computeNanos time spent computing (dispatches, reduce, apply) since the last Applied */
    public record Applied(int expert, int device, long computeNanos) implements Reply {}

    public record Checkpointed(int expert, FileDigest file) implements Reply {}

    public record Restored(int expert) implements Reply {}

    /** The request could not be done; the expert keeps its state as it was and goes on serving. */
    public record StepFailed(int expert, String message) implements Reply {}

    /** Sent to the node once the expert's state exists on its device and its buffers are registered. */
    public record Started(int expert, int device, ActorRef<Command> self) implements Reply {}

    /** What an expert needs to start: which expert, where, and the run it belongs to. */
    public record Setup(long runId, int expert, int device, List<MoeLora.ModuleShape> modules, MoeLoraConfig config,
                        long adapterSeed, double weightDecay, int microBatches, ExpertDataPlane dataPlane) {}

    private ExpertActor() {}

    /** @param started told {@link Started} once the expert's state exists (or the actor fails, which its parent sees) */
    public static Behavior<Command> create(Setup setup, ActorRef<Reply> started) {
        return Behaviors.setup(ctx -> {
            DeviceSlots.bind(setup.device());
            ExpertState state = new ExpertState(setup.expert(), setup.modules(), setup.config(), setup.adapterSeed(),
                    setup.weightDecay(), setup.microBatches());
            setup.dataPlane().register(state, ctx.getSelf());
            started.tell(new Started(setup.expert(), setup.device(), ctx.getSelf()));
            long[] computeNanos = {0};
            return Behaviors.receive(Command.class)
                    .onMessage(Compute.class, c -> {
                        long t0 = System.nanoTime();
                        compute(setup, state, c.header());
                        computeNanos[0] += System.nanoTime() - t0;
                        return Behaviors.same();
                    })
                    .onMessage(Reduce.class, r -> answer(r.replyTo(), state, "reduce", () -> {
                        long t0 = System.nanoTime();
                        double[] norms = state.reduce(r.microBatches());
                        computeNanos[0] += System.nanoTime() - t0;
                        return new Reduced(state.expert(), state.parameters().stream().map(Parameter::name).toList(), norms);
                    }))
                    .onMessage(Apply.class, a -> answer(a.replyTo(), state, "apply", () -> {
                        long t0 = System.nanoTime();
                        state.apply(a.lr(), a.clipFactor());
                        long spent = computeNanos[0] + System.nanoTime() - t0;
                        computeNanos[0] = 0;
                        return new Applied(state.expert(), setup.device(), spent);
                    }))
                    .onMessage(Checkpoint.class, c -> answer(c.replyTo(), state, "checkpoint", () -> {
                        List<dev.moelora.model.checkpoint.FileDigest> written = StateFile.writeAll(c.directory(), state.parameters(), state.optimizer());
                        if (written.size() != 1) throw new IllegalStateException("an expert's state is one file, got " + written);
                        var d = written.get(0);
                        return new Checkpointed(state.expert(), FileDigest.newBuilder().setName(d.name()).setSize(d.size()).setSha256(d.sha256()).build());
                    }))
                    .onMessage(Restore.class, r -> answer(r.replyTo(), state, "restore", () -> {
                        java.util.Set<String> mine = StateFile.split(state.parameters()).keySet();
                        StateFile.readAll(r.directory(), r.files().stream().filter(f -> mine.contains(f.getName()))
                                .map(f -> new dev.moelora.model.checkpoint.FileDigest(f.getName(), f.getSize(), f.getSha256())).toList(),
                                state.parameters(), state.optimizer());
                        return new Restored(state.expert());
                    }))
                    .build();
        });
    }

    private interface Work {
        Reply run() throws Exception;
    }

    /** Runs a step command and replies its result, or its failure with the cause: a request never goes unanswered. */
    private static Behavior<Command> answer(ActorRef<Reply> replyTo, ExpertState state, String what, Work work) {
        Reply reply;
        try {
            reply = work.run();
        } catch (Exception e) {
            LOG.error("expert {}: {} failed", state.expert(), what, e);
            reply = new StepFailed(state.expert(), "expert " + state.expert() + ": " + what + " failed: " + describe(e));
        }
        replyTo.tell(reply);
        return Behaviors.same();
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
}
