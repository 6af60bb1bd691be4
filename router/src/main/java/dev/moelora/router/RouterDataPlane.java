package dev.moelora.router;

import dev.moelora.proto.frame.FrameError;
import dev.moelora.proto.frame.TensorFrameReceiver;
import dev.moelora.proto.frame.TensorFrameSender;
import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import dev.moelora.proto.frame.DataPlane;
import dev.moelora.proto.frame.IdleSettings;
import io.aeron.ExclusivePublication;
import io.aeron.Subscription;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.agrona.concurrent.IdleStrategy;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A router's data plane, driven by the router's own thread: it sends each expert its rows (or
 * their gradients) as tensor frames and polls the router's subscription until every expert
 * addressed has answered, writing each answer straight into the rows it belongs to. It also
 * all-gathers the router-side gradients (gates, heads) between data-parallel routers. Frames that
 * do not match what is awaited are dropped and counted by {@link NotAwaited} cause; an expert's
 * FAILURE frame fails the exchange at once with the expert's message; a wait that outlasts the
 * timeout fails with the experts and nodes that did not answer.
 */
public final class RouterDataPlane implements AutoCloseable {
    /** Where an expert or a router listens. */
    public record Endpoint(String channel, int stream) {}

    /** Why a well-formed frame was dropped: what it answers is not what this router awaits. */
    public enum NotAwaited {
        /** An answer (or FAILURE) for another exchange than the open one (other direction, step, micro-batch or module) or when none is open; a gradient of another step. */
        STALE,
        /** An answer from an expert the open exchange did not address, or outside the run; a frame of an input direction; a gradient of a micro-batch this router computed or outside the step, or of a tensor it does not have. */
        MISADDRESSED,
        /** A second answer (or FAILURE) from an expert that already answered in the open exchange; a second copy of a gradient tensor. */
        DUPLICATE,
        /** An answer whose shape is not (the rows sent, the module's output columns); a gradient with another element count than its tensor. */
        MISSHAPEN
    }

    private final DataPlane media;
    private int router;
    private final Subscription subscription;
    private final TensorFrameReceiver receiver;
    private final Duration timeout;
    private final IdleStrategy idle;
    private final List<ExclusivePublication> publications = new ArrayList<>();
    private long runId = Long.MIN_VALUE;
    private TensorFrameSender[] expertSender = new TensorFrameSender[0]; // by expert: its node's publication
    private Endpoint[] expertEndpoint = new Endpoint[0];
    private TensorFrameSender[] routerSender = new TensorFrameSender[0]; // by router; null for this one
    private final long[] notAwaited = new long[NotAwaited.values().length];
    private final List<TensorFrameSender> senders = new ArrayList<>();
    private long closedFrames, closedBytes, closedSendNanos; // of the senders of earlier runs
    private long waitNanos;                                  // polling for answers and gradients
    private volatile String abandoned;                       // set from another thread: give up the current wait

    // what the current exchange awaits
    private Direction awaited;
    private long step;
    private int micro, module;
    private boolean[] addressed = new boolean[0];    // by expert: sent rows in this exchange
    private ByteBuffer[] answer = new ByteBuffer[0]; // by expert: where its answer goes, null once it answered (or if not addressed)
    private long[] answerRows = new long[0];
    private long answerCols;
    private int outstanding;
    private int failedExpert = -1;                   // the expert whose FAILURE frame ended this exchange, -1 when none
    private String failure;

    // the gradient all-gather of the current step
    private long gradientStep = Long.MIN_VALUE;
    private ByteBuffer[][] gradientSlot = new ByteBuffer[0][]; // (micro-batches, tensors)
    private boolean[] ownMicro = new boolean[0];
    private int gradientsArrived;

    /** As the full constructor with {@link IdleSettings#defaults()}. */
    public RouterDataPlane(DataPlane media, String channel, int stream, Duration timeout) {
        this(media, channel, stream, timeout, IdleSettings.defaults());
    }

    /** Subscribes to this router's endpoint; its index in a run comes with {@link #startRun}. Waits for frames with {@code idle}'s poller backoff. */
    public RouterDataPlane(DataPlane media, String channel, int stream, Duration timeout, IdleSettings idle) {
        this.media = media;
        this.timeout = timeout;
        this.idle = idle.poller();
        this.subscription = media.subscription(channel, stream);
        this.receiver = new TensorFrameReceiver(run -> run == runId, new TensorFrameReceiver.Sink() {
            @Override public ByteBuffer destination(TensorFrameHeader h) { return RouterDataPlane.this.destination(h); }
            @Override public void onTensor(TensorFrameHeader h, ByteBuffer b) { RouterDataPlane.this.onTensor(h); }
            @Override public boolean onFailure(TensorFrameHeader h) { return RouterDataPlane.this.onFailure(h); }
        });
    }

    public int router() { return router; }

    /** Routers in the run (after {@link #startRun}). */
    int routers() { return routerSender.length; }

    /**
     * Frames dropped so far, by kind: the receiver's counts, except its UNEXPECTED, which are exactly
     * the frames this router did not await, given by {@link NotAwaited} cause instead.
     */
    public String droppedSummary() {
        Map<String, Long> out = new LinkedHashMap<>();
        for (FrameError k : FrameError.values()) if (k != FrameError.UNEXPECTED && receiver.dropped(k) > 0) out.put(k.name(), receiver.dropped(k));
        for (NotAwaited k : NotAwaited.values()) if (dropped(k) > 0) out.put(k.name(), dropped(k));
        return out.isEmpty() ? "none" : out.toString();
    }

    /** Well-formed frames dropped because nothing here awaited them, for {@code cause}; read on the router's thread. */
    public long dropped(NotAwaited cause) {
        return notAwaited[cause.ordinal()];
    }

    public TensorFrameReceiver receiver() { return receiver; }

    /**
     * Connects to the run's experts and routers.
     *
     * @param router  this router's index in the run
     * @param experts by expert index, the endpoint of the node that hosts it
     * @param routers by router index, every router's endpoint (this one's included)
     */
    public void startRun(long runId, int router, List<Endpoint> experts, List<Endpoint> routers) {
        if (router < 0 || router >= routers.size()) throw new IllegalArgumentException("router " + router + " of " + routers.size());
        for (TensorFrameSender s : senders) {
            closedFrames += s.framesSent();
            closedBytes += s.bytesSent();
            closedSendNanos += s.sendNanos();
        }
        senders.clear();
        for (ExclusivePublication p : publications) p.close();
        publications.clear();
        abandoned = null;
        gradientStep = Long.MIN_VALUE;
        awaited = null;
        this.runId = runId;
        this.router = router;
        Map<Endpoint, TensorFrameSender> byNode = new HashMap<>();
        expertSender = new TensorFrameSender[experts.size()];
        expertEndpoint = experts.toArray(new Endpoint[0]);
        for (int e = 0; e < experts.size(); e++) {
            expertSender[e] = byNode.computeIfAbsent(experts.get(e), this::sender);
        }
        routerSender = new TensorFrameSender[routers.size()];
        for (int r = 0; r < routers.size(); r++) if (r != router) routerSender[r] = sender(routers.get(r));
        addressed = new boolean[experts.size()];
        answer = new ByteBuffer[experts.size()];
        answerRows = new long[experts.size()];
    }

    private TensorFrameSender sender(Endpoint endpoint) {
        ExclusivePublication p = media.publication(endpoint.channel(), endpoint.stream());
        publications.add(p);
        TensorFrameSender s = new TensorFrameSender(p, timeout);
        senders.add(s);
        return s;
    }

    /**
     * Gives up the wait in progress (and any before the next {@link #startRun}): the router's
     * thread, blocked in an exchange or the gradient all-gather, throws at its next poll. Called
     * from another thread when the coordinator abandons the step.
     */
    public void abandon(String reason) {
        abandoned = reason;
    }

    private void checkAbandoned(long step) {
        String why = abandoned;
        if (why != null) throw new IllegalStateException("router " + router + ", step " + step + ": abandoned by the coordinator (" + why + ")");
    }

    /** What this data plane sent and received so far, and how long it spent sending and waiting; read on the router's thread. */
    public Traffic traffic() {
        long frames = closedFrames, bytes = closedBytes, nanos = closedSendNanos;
        for (TensorFrameSender s : senders) {
            frames += s.framesSent();
            bytes += s.bytesSent();
            nanos += s.sendNanos();
        }
        Map<String, Long> drops = new LinkedHashMap<>();
        for (FrameError k : FrameError.values()) if (k != FrameError.UNEXPECTED && receiver.dropped(k) > 0) drops.put(k.name(), receiver.dropped(k));
        for (NotAwaited k : NotAwaited.values()) if (dropped(k) > 0) drops.put(k.name(), dropped(k));
        return new Traffic(frames, bytes, receiver.messagesReceived(), receiver.bytesReceived(), nanos, waitNanos, drops);
    }

    /** Counters since the data plane started: frames and bytes each way, seconds sending and waiting, drops by cause. */
    public record Traffic(long framesSent, long bytesSent, long framesReceived, long bytesReceived, long sendNanos, long waitNanos,
                          Map<String, Long> dropped) {}

    /** A little-endian byte view of an array's memory, positioned at its first element. */
    static ByteBuffer bytes(INDArray a) {
        ByteBuffer b = a.data().asNio().order(ByteOrder.LITTLE_ENDIAN);
        b.position((int) (a.offset() * Float.BYTES));
        return b;
    }

    /**
     * Sends each expert with rows its rows of {@code in} and waits until every one has written its
     * answer into the same rows of {@code out}.
     *
     * @throws IllegalStateException at once when an addressed expert sends a FAILURE frame (the
     *     message names the expert, its channel, the step, micro-batch and module, and carries the
     *     expert's own message), or when an expert has not answered within the timeout
     *
     * @param direction FORWARD_INPUT (rows x in, H out) or BACKWARD_INPUT (dL/dH in, dL/dX out)
     * @param in        (NK, inCols) expert by expert
     * @param offset    (E + 1) row ranges per expert
     * @param out       (NK, outCols)
     */
    void exchange(Direction direction, long step, int micro, int module, int layer, String moduleName, INDArray in, int[] offset,
                  INDArray out) {
        long inCols = in.size(1), outCols = out.size(1);
        ByteBuffer src = bytes(in), dst = bytes(out);
        int srcBase = src.position(), dstBase = dst.position();
        this.awaited = direction == Direction.FORWARD_INPUT ? Direction.FORWARD_OUTPUT : Direction.BACKWARD_OUTPUT;
        this.step = step;
        this.micro = micro;
        this.module = module;
        this.answerCols = outCols;
        outstanding = 0;
        failedExpert = -1;
        int experts = offset.length - 1;
        if (experts != expertSender.length) {
            throw new IllegalStateException("module " + moduleName + " routes to " + experts + " experts, the run placed " + expertSender.length);
        }
        for (int e = 0; e < experts; e++) {
            long n = offset[e + 1] - offset[e];
            answer[e] = null;
            addressed[e] = n > 0;
            if (n == 0) continue;
            ByteBuffer d = dst.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            int at = dstBase + (int) (offset[e] * outCols * Float.BYTES);
            d.limit(at + (int) (n * outCols * Float.BYTES)).position(at);
            answer[e] = d;
            answerRows[e] = n;
            outstanding++;
        }
        for (int e = 0; e < experts; e++) {
            long n = offset[e + 1] - offset[e];
            if (n == 0) continue;
            TensorFrameHeader h = TensorFrameHeader.newBuilder().setRunId(runId).setStep(step).setMicroBatch(micro).setLayer(layer)
                    .setModule(module).setExpert(e).setSource(router).setDirection(direction).setDtype(DType.FLOAT32)
                    .addShape(n).addShape(inCols).build();
            expertSender[e].send(h, src, srcBase + (int) (offset[e] * inCols * Float.BYTES), (int) (n * inCols * Float.BYTES));
        }
        long waitStart = System.nanoTime(), deadline = waitStart + timeout.toNanos();
        while (outstanding > 0 && failedExpert < 0) {
            idle.idle(subscription.poll(receiver, 16));
            if (abandoned != null) {
                awaited = null;
                waitNanos += System.nanoTime() - waitStart;
                checkAbandoned(step);
            }
            if (outstanding > 0 && failedExpert < 0 && System.nanoTime() > deadline) {
                List<String> silent = new ArrayList<>();
                for (int e = 0; e < experts; e++) if (answer[e] != null) silent.add("expert " + e + " at " + expertEndpoint[e].channel());
                awaited = null;
                throw new IllegalStateException("router " + router + ", step " + step + ", micro-batch " + micro + ", module " + moduleName
                        + ": no " + awaitedAnswer(direction) + " within " + timeout.toSeconds() + " s from " + silent
                        + "; frames dropped so far: " + droppedSummary());
            }
        }
        awaited = null;
        waitNanos += System.nanoTime() - waitStart;
        if (failedExpert >= 0) {
            int e = failedExpert;
            throw new IllegalStateException("router " + router + ", step " + step + ", micro-batch " + micro + ", module " + moduleName
                    + ": expert " + e + " at " + expertEndpoint[e].channel() + " stream " + expertEndpoint[e].stream()
                    + " failed instead of sending its " + awaitedAnswer(direction) + ": " + failure);
        }
    }

    private static String awaitedAnswer(Direction dispatched) {
        return dispatched == Direction.FORWARD_INPUT ? Direction.FORWARD_OUTPUT.name() : Direction.BACKWARD_OUTPUT.name();
    }

    /**
     * Opens the gradient all-gather of {@code step}: slot buffers by (micro-batch, tensor) and which
     * micro-batches this router computed itself. Frames for the step that arrive while the router
     * is still busy are kept.
     */
    void beginStep(long step, INDArray[][] slots, boolean[] own) {
        if (step == gradientStep) return;
        gradientStep = step;
        gradientsArrived = 0;
        ownMicro = own;
        gradientSlot = new ByteBuffer[slots.length][];
        for (int m = 0; m < slots.length; m++) {
            gradientSlot[m] = new ByteBuffer[slots[m].length];
            for (int i = 0; i < slots[m].length; i++) gradientSlot[m][i] = bytes(slots[m][i]);
        }
    }

    /** Sends this router's micro-batch gradients to every other router. */
    void sendGradients(long step, int micro, INDArray[] tensors) {
        for (int r = 0; r < routerSender.length; r++) {
            if (routerSender[r] == null) continue;
            for (int i = 0; i < tensors.length; i++) {
                TensorFrameHeader.Builder h = TensorFrameHeader.newBuilder().setRunId(runId).setStep(step).setMicroBatch(micro).setLayer(-1)
                        .setModule(i).setExpert(-1).setSource(router).setDirection(Direction.GRADIENT).setDtype(DType.FLOAT32);
                for (long d : tensors[i].shape()) h.addShape(d);
                ByteBuffer src = bytes(tensors[i]);
                routerSender[r].send(h.build(), src, src.position(), (int) (tensors[i].length() * Float.BYTES));
            }
        }
    }

    /** Waits until {@code expected} gradient tensors of the step have arrived from the other routers. */
    void awaitGradients(long step, int expected) {
        long waitStart = System.nanoTime(), deadline = waitStart + timeout.toNanos();
        while (gradientsArrived < expected) {
            idle.idle(subscription.poll(receiver, 16));
            if (abandoned != null) {
                waitNanos += System.nanoTime() - waitStart;
                checkAbandoned(step);
            }
            if (gradientsArrived < expected && System.nanoTime() > deadline) {
                throw new IllegalStateException("router " + router + ", step " + step + ": " + gradientsArrived + " of " + expected
                        + " gradient tensors from the other routers within " + timeout.toSeconds() + " s; frames dropped so far: " + droppedSummary());
            }
        }
        waitNanos += System.nanoTime() - waitStart;
    }

    private ByteBuffer destination(TensorFrameHeader h) {
        NotAwaited why = h.getDirection() == Direction.GRADIENT ? unawaitedGradient(h) : unawaitedAnswer(h);
        if (why != null) {
            notAwaited[why.ordinal()]++;
            return null;
        }
        if (h.getDirection() == Direction.GRADIENT) {
            ByteBuffer d = gradientSlot[h.getMicroBatch()][h.getModule()];
            gradientSlot[h.getMicroBatch()][h.getModule()] = null; // one copy per (micro-batch, tensor)
            return d;
        }
        return answer[h.getExpert()];
    }

    /** Why the open exchange does not await this answer or FAILURE frame; null when it does. */
    private NotAwaited unawaitedAnswer(TensorFrameHeader h) {
        Direction d = h.getDirection();
        if (d != Direction.FORWARD_OUTPUT && d != Direction.BACKWARD_OUTPUT && d != Direction.FAILURE) return NotAwaited.MISADDRESSED;
        if (awaited == null || (d != Direction.FAILURE && d != awaited) || h.getStep() != step || h.getMicroBatch() != micro
                || h.getModule() != module) {
            return NotAwaited.STALE;
        }
        int e = h.getExpert();
        if (e < 0 || e >= addressed.length || !addressed[e]) return NotAwaited.MISADDRESSED;
        if (answer[e] == null) return NotAwaited.DUPLICATE;
        if (d != Direction.FAILURE && (h.getShapeCount() != 2 || h.getShape(0) != answerRows[e] || h.getShape(1) != answerCols)) {
            return NotAwaited.MISSHAPEN;
        }
        return null;
    }

    /** Why this step's all-gather does not await this gradient tensor; null when it does. */
    private NotAwaited unawaitedGradient(TensorFrameHeader h) {
        int m = h.getMicroBatch(), i = h.getModule();
        if (h.getStep() != gradientStep) return NotAwaited.STALE;
        if (m < 0 || m >= gradientSlot.length || ownMicro[m] || i < 0 || i >= gradientSlot[m].length) return NotAwaited.MISADDRESSED;
        if (gradientSlot[m][i] == null) return NotAwaited.DUPLICATE;
        long n = 1;
        for (long s : h.getShapeList()) n *= s;
        if (n * Float.BYTES != gradientSlot[m][i].remaining()) return NotAwaited.MISSHAPEN;
        return null;
    }

    private void onTensor(TensorFrameHeader h) {
        if (h.getDirection() == Direction.GRADIENT) {
            gradientsArrived++;
            return;
        }
        answer[h.getExpert()] = null;
        outstanding--;
    }

    /** An expert's FAILURE frame: it ends the open exchange when it answers it. */
    private boolean onFailure(TensorFrameHeader h) {
        NotAwaited why = unawaitedAnswer(h);
        if (why != null) {
            notAwaited[why.ordinal()]++;
            return false;
        }
        answer[h.getExpert()] = null;
        outstanding--;
        if (failedExpert < 0) {
            failedExpert = h.getExpert();
            failure = h.getFailure();
        }
        return true;
    }

    @Override
    public void close() {
        subscription.close();
        for (ExclusivePublication p : publications) p.close();
    }
}
