package dev.moelora.experts;

import dev.moelora.proto.frame.TensorFrameReceiver;
import dev.moelora.proto.frame.TensorFrameSender;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import dev.moelora.proto.frame.DataPlane;
import dev.moelora.proto.frame.IdleSettings;
import io.aeron.ExclusivePublication;
import io.aeron.Subscription;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.agrona.concurrent.IdleStrategy;
import org.apache.pekko.actor.typed.ActorRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An expert node's data plane: one thread polls the node's Aeron subscription, checks every
 * tensor frame (the receiver drops and counts malformed ones), copies each dispatch straight into
 * the addressed expert's input buffer and tells that expert's actor; the experts reply on their
 * own publications, one per router. The polling thread never computes; the experts never poll.
 */
public final class ExpertDataPlane implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertDataPlane.class);

    /** Where a router listens for replies. */
    public record Endpoint(String channel, int stream) {}

    private final DataPlane media;
    private final Subscription subscription;
    private final TensorFrameReceiver receiver;
    private final IdleStrategy idle;
    private final Duration deadline;
    private final Thread poller;
    private volatile boolean running = true;
    private volatile long runId = Long.MIN_VALUE;
    private volatile List<Endpoint> routers = List.of();
    private final AtomicReferenceArray<ExpertState> states;
    private final AtomicReferenceArray<ActorRef<ExpertActor.Command>> actors;
    private final AtomicReferenceArray<TensorFrameSender[]> senders; // (experts) x (routers): an expert replies on its own publications
    private final List<ExclusivePublication> publications = new java.util.concurrent.CopyOnWriteArrayList<>();
    private long closedFrames, closedBytes, closedSendNanos; // of the senders of earlier runs

    /** As the full constructor with {@link IdleSettings#defaults()}. */
    public ExpertDataPlane(DataPlane media, String channel, int stream, int maxExperts, Duration deadline) {
        this(media, channel, stream, maxExperts, deadline, IdleSettings.defaults());
    }

    /**
     * Subscribes to {@code channel}/{@code stream} and starts polling.
     *
     * @param maxExperts the largest expert index + 1 this node may host
     * @param deadline   how long a reply may wait on back-pressure or an absent router before it fails
     * @param idle       how the poller waits for frames ({@link IdleSettings#poller()})
     */
    public ExpertDataPlane(DataPlane media, String channel, int stream, int maxExperts, Duration deadline, IdleSettings idle) {
        this.media = media;
        this.idle = idle.poller();
        this.deadline = deadline;
        this.subscription = media.subscription(channel, stream);
        this.states = new AtomicReferenceArray<>(maxExperts);
        this.actors = new AtomicReferenceArray<>(maxExperts);
        this.senders = new AtomicReferenceArray<>(maxExperts);
        this.receiver = new TensorFrameReceiver(run -> run == runId, new TensorFrameReceiver.Sink() {
            @Override public ByteBuffer destination(TensorFrameHeader h) { return ExpertDataPlane.this.destination(h); }
            @Override public void onTensor(TensorFrameHeader h, ByteBuffer b) { ExpertDataPlane.this.onTensor(h); }
        });
        this.poller = new Thread(this::poll, "expert-data-plane");
        this.poller.setDaemon(true);
        this.poller.start();
    }

    /**
     * The run whose frames are accepted and the routers' endpoints, by router index. Forgets the
     * experts and publications of an earlier run (its experts must have stopped): frames of that
     * run are dropped from now on as an unknown run.
     */
    public synchronized void startRun(long runId, List<Endpoint> routers) {
        this.runId = runId;
        for (int e = 0; e < states.length(); e++) {
            TensorFrameSender[] old = senders.get(e);
            if (old != null) for (TensorFrameSender s : old) retire(s);
            states.set(e, null);
            actors.set(e, null);
            senders.set(e, null);
        }
        for (ExclusivePublication p : publications) p.close();
        publications.clear();
        this.routers = List.copyOf(routers);
    }

    private void retire(TensorFrameSender s) {
        closedFrames += s.framesSent();
        closedBytes += s.bytesSent();
        closedSendNanos += s.sendNanos();
    }

    /** What this node sent and received so far and how long its experts spent sending: frames, bytes, nanoseconds, drops by kind. */
    public synchronized Traffic traffic() {
        long frames = closedFrames, bytes = closedBytes, nanos = closedSendNanos;
        for (int e = 0; e < senders.length(); e++) {
            TensorFrameSender[] s = senders.get(e);
            if (s == null) continue;
            for (TensorFrameSender x : s) {
                frames += x.framesSent();
                bytes += x.bytesSent();
                nanos += x.sendNanos();
            }
        }
        java.util.Map<String, Long> drops = new java.util.LinkedHashMap<>();
        for (dev.moelora.proto.frame.FrameError k : dev.moelora.proto.frame.FrameError.values()) {
            if (receiver.dropped(k) > 0) drops.put(k.name(), receiver.dropped(k));
        }
        return new Traffic(frames, bytes, receiver.messagesReceived(), receiver.bytesReceived(), nanos, drops);
    }

    /** Counters since the data plane started. */
    public record Traffic(long framesSent, long bytesSent, long framesReceived, long bytesReceived, long sendNanos,
                          java.util.Map<String, Long> dropped) {}

    public TensorFrameReceiver receiver() { return receiver; }

    /** Called by an expert's actor, on its own thread, once its state exists. */
    synchronized void register(ExpertState state, ActorRef<ExpertActor.Command> actor) {
        int e = state.expert();
        if (e >= states.length()) throw new IllegalArgumentException("expert " + e + " on a node sized for " + states.length());
        List<Endpoint> r = routers;
        TensorFrameSender[] s = new TensorFrameSender[r.size()];
        for (int i = 0; i < s.length; i++) {
            ExclusivePublication p = media.publication(r.get(i).channel(), r.get(i).stream());
            publications.add(p);
            s[i] = new TensorFrameSender(p, deadline);
        }
        senders.set(e, s);
        actors.set(e, actor);
        states.set(e, state);
    }

    /** Sends an expert's reply to router {@code router}; called on that expert's thread only. */
    void reply(int router, TensorFrameHeader header, ByteBuffer payload) {
        TensorFrameSender s = sender(router, header);
        if (s != null) s.send(header, payload, payload.position(), payload.remaining());
    }

    /** Tells router {@code router} that the expert could not compute the answer {@code header} describes, and why; on that expert's thread only. */
    void replyFailure(int router, TensorFrameHeader header, String failure) {
        TensorFrameSender s = sender(router, header);
        if (s != null) s.sendFailure(header, failure);
    }

    private TensorFrameSender sender(int router, TensorFrameHeader header) {
        TensorFrameSender[] s = senders.get(header.getExpert());
        if (router < 0 || router >= s.length) {
            LOG.warn("expert {}: a dispatch named router {}, but the run has {} routers; no reply", header.getExpert(), router, s.length);
            return null;
        }
        return s[router];
    }

    private ByteBuffer destination(TensorFrameHeader h) {
        if (h.getDirection() != Direction.FORWARD_INPUT && h.getDirection() != Direction.BACKWARD_INPUT) return null;
        if (h.getExpert() < 0 || h.getExpert() >= states.length() || h.getShapeCount() != 2) return null;
        ExpertState state = states.get(h.getExpert());
        if (state == null) return null;
        boolean backward = h.getDirection() == Direction.BACKWARD_INPUT;
        if (h.getModule() < 0 || h.getModule() >= state.modules() || h.getShape(1) != state.inputColumns(h.getModule(), backward)) {
            return null;
        }
        return state.input(h.getMicroBatch(), h.getModule(), h.getShape(0), backward);
    }

    private void onTensor(TensorFrameHeader h) {
        ActorRef<ExpertActor.Command> actor = actors.get(h.getExpert());
        if (actor != null) actor.tell(new ExpertActor.Compute(h)); // null only if a new run started while the frame arrived
    }

    private void poll() {
        while (running) {
            try {
                idle.idle(subscription.poll(receiver, 16));
            } catch (RuntimeException e) {
                LOG.error("expert data plane: a frame could not be handled; dropped", e);
            }
        }
    }

    /** Experts registered so far, ascending. */
    List<Integer> hosted() {
        List<Integer> out = new ArrayList<>();
        for (int e = 0; e < states.length(); e++) if (states.get(e) != null) out.add(e);
        return out;
    }

    @Override
    public void close() {
        running = false;
        try {
            poller.join(2_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        subscription.close();
        for (ExclusivePublication p : publications) p.close();
    }
}
