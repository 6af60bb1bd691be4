package dev.moelora.proto.frame;

import static dev.moelora.proto.frame.TestFrames.littleEndian;
import static dev.moelora.proto.frame.TestFrames.randomFloats;
import static dev.moelora.proto.frame.TestFrames.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.moelora.proto.frame.TestFrames.RecordingSink;
import io.aeron.ExclusivePublication;
import io.aeron.Image;
import io.aeron.Subscription;
import io.aeron.logbuffer.FragmentHandler;
import io.aeron.logbuffer.FrameDescriptor;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The receiver reassembles Aeron fragments itself: real IPC publications with a small MTU (so a
 * tensor is many fragments, with Aeron's own BEGIN/END flags, sessions and positions), and a
 * handler between the subscription and the receiver that withholds chosen fragments to stand for
 * faults Aeron's reliable delivery would not produce. Must never depend on timing: every wait is a
 * poll until a condition, bounded by {@link #WAIT}.
 */
class TensorFrameFragmentsTest {
    /** 1 MiB terms (128 KiB messages), 1 KiB MTU: a 20 KB tensor is one message of ~20 fragments, a 200 KB one two chunks. */
    private static final ChannelSettings SMALL_MTU = new ChannelSettings(1 << 20, 1024);
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final AtomicInteger nextStream = new AtomicInteger(9100);
    private static DataPlane plane;

    @BeforeAll
    static void startDriver() {
        plane = DataPlane.launchEmbedded();
    }

    @AfterAll
    static void stopDriver() {
        plane.close();
    }

    private final RecordingSink sink = RecordingSink.exactDestinations();
    private final TensorFrameReceiver receiver = new TensorFrameReceiver(run -> true, sink);

    /** Payload A (the one a fault hits) and B (sent after it on the same publication, which must still arrive intact). */
    private final byte[] first = littleEndian(randomFloats(5_000, 1));
    private final byte[] second = littleEndian(randomFloats(5_000, 2));

    /**
     * Sends A then B on one publication from another thread and hands every fragment the
     * subscription yields to the receiver except those whose number (0, 1, ... in stream order) and
     * flags {@code withhold} accepts; returns when B has been delivered.
     */
    private void sendWithholding(byte[] a, byte[] b, Withhold withhold) {
        int stream = nextStream.getAndIncrement();
        try (Subscription subscription = plane.subscription(SMALL_MTU.ipc(), stream);
             ExclusivePublication publication = plane.publication(SMALL_MTU.ipc(), stream)) {
            TensorFrameSender sender = new TensorFrameSender(publication, WAIT);
            CompletableFuture<Void> sent = CompletableFuture.runAsync(() -> {
                sender.send(tensor(a.length / Float.BYTES).build(), ByteBuffer.wrap(a), 0, a.length);
                sender.send(tensor(b.length / Float.BYTES).setStep(4).build(), ByteBuffer.wrap(b), 0, b.length);
            }, runnable -> new Thread(runnable, "fragments-sender").start());
            AtomicInteger fragments = new AtomicInteger();
            FragmentHandler filter = (buffer, offset, length, header) -> {
                if (!withhold.test(fragments.getAndIncrement(), header.flags())) {
                    receiver.onFragment(buffer, offset, length, header);
                }
            };
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (!(sent.isDone() && sink.delivered.stream().anyMatch(d -> d.header().getStep() == 4))) {
                if (subscription.poll(filter, 8) == 0) {
                    Thread.onSpinWait();
                }
                if (System.nanoTime() > deadline) {
                    fail("B not delivered within " + WAIT + "; sent: " + sent + ", drops: " + receiver.droppedTotal());
                }
            }
            sent.join();
            assertTrue(fragments.get() >= (a.length + b.length) / SMALL_MTU.mtu(), fragments.get() + " fragments: the MTU did not split the tensors");
        }
    }

    /** Whether the fragment numbered {@code index} in stream order, with Aeron {@code flags}, is withheld from the receiver. */
    private interface Withhold {
        boolean test(int index, byte flags);
    }

    /** Only B arrived, bit for bit. */
    private void assertOnlyTheSecondDelivered() {
        assertEquals(1, sink.delivered.size(), "tensors delivered");
        assertEquals(4, sink.delivered.get(0).header().getStep());
        assertArrayEquals(second, sink.delivered.get(0).payload());
    }

    private void assertDropped(FrameError kind, long count) {
        assertEquals(count, receiver.dropped(kind), kind.toString());
    }

    @Test
    void aFragmentedTensorArrivesWholeWhenNoFragmentIsWithheld() {
        sendWithholding(first, second, (index, flags) -> false);
        assertEquals(2, sink.delivered.size());
        assertArrayEquals(first, sink.delivered.get(0).payload());
        assertArrayEquals(second, sink.delivered.get(1).payload());
        assertEquals(0, receiver.droppedTotal());
    }

    @Test
    void aMissingMiddleFragmentTruncatesItsMessageAndTheNextTensorStillArrives() {
        sendWithholding(first, second, (index, flags) -> index == 1);
        assertDropped(FrameError.TRUNCATED, 1);
        assertEquals(1, receiver.droppedTotal(), "drops of other kinds");
        assertOnlyTheSecondDelivered();
    }

    @Test
    void aMissingMiddleFragmentOfAFirstChunkIsSeenAtTheGapNotAsALaterCrcMismatch() {
        // two chunks: without the gap check, chunk 0 would end 1 KB short but plausible, then fail its CRC
        byte[] chunked = littleEndian(randomFloats(50_000, 3));
        sendWithholding(chunked, second, (index, flags) -> index == 1);
        assertDropped(FrameError.TRUNCATED, 1);
        assertDropped(FrameError.OUT_OF_ORDER, 1); // chunk 1, with no tensor in progress
        assertEquals(2, receiver.droppedTotal(), "drops of other kinds");
        assertOnlyTheSecondDelivered();
    }

    @Test
    void aBeginWithoutItsEndFollowedByANewBeginDropsTheUnfinishedMessage() {
        AtomicInteger ends = new AtomicInteger();
        sendWithholding(first, second, (index, flags) -> (flags & FrameDescriptor.END_FRAG_FLAG) != 0 && ends.getAndIncrement() == 0);
        assertDropped(FrameError.TRUNCATED, 1);
        assertEquals(1, receiver.droppedTotal(), "drops of other kinds");
        assertOnlyTheSecondDelivered();
    }

    @Test
    void aContinuationWhoseBeginDidNotArriveIsTruncatedOnce() {
        sendWithholding(first, second, (index, flags) -> index == 0);
        assertDropped(FrameError.TRUNCATED, 1); // one message, not one per remaining fragment
        assertEquals(1, receiver.droppedTotal(), "drops of other kinds");
        assertOnlyTheSecondDelivered();
    }

    @Test
    void aHeaderSplitAcrossFragmentsIsGatheredBeforeThePayload() {
        ChannelSettings tiny = new ChannelSettings(1 << 16, 64); // 32 payload bytes per fragment: the header alone spans two
        int stream = nextStream.getAndIncrement();
        try (Subscription subscription = plane.subscription(tiny.ipc(), stream);
             ExclusivePublication publication = plane.publication(tiny.ipc(), stream)) {
            byte[] payload = littleEndian(randomFloats(100, 4));
            TensorFrameSender sender = new TensorFrameSender(publication, WAIT);
            while (!publication.isConnected()) {
                Thread.onSpinWait();
            }
            sender.send(tensor(100).build(), ByteBuffer.wrap(payload), 0, payload.length);
            pollUntil(() -> sink.delivered.size() == 1, subscription, receiver);
            assertArrayEquals(payload, sink.delivered.get(0).payload());
            assertEquals(0, receiver.droppedTotal());
        }
    }

    @Test
    void fragmentsOfTwoSessionsInterleavedAreReassembledPerSession() throws Exception {
        int stream = nextStream.getAndIncrement();
        try (Subscription subscription = plane.subscription(SMALL_MTU.ipc(), stream);
             ExclusivePublication one = plane.publication(SMALL_MTU.ipc(), stream);
             ExclusivePublication two = plane.publication(SMALL_MTU.ipc(), stream)) {
            while (subscription.imageCount() < 2 || !one.isConnected() || !two.isConnected()) {
                Thread.onSpinWait();
            }
            // both whole in their terms before any is read, so polling one fragment per image alternates them
            new TensorFrameSender(one, WAIT).send(tensor(first.length / Float.BYTES).build(), ByteBuffer.wrap(first), 0, first.length);
            new TensorFrameSender(two, WAIT).send(tensor(second.length / Float.BYTES).setStep(4).build(), ByteBuffer.wrap(second), 0, second.length);
            List<Integer> sessions = new ArrayList<>();
            FragmentHandler recording = (buffer, offset, length, header) -> {
                sessions.add(header.sessionId());
                receiver.onFragment(buffer, offset, length, header);
            };
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT.toSeconds());
            while (sink.delivered.size() < 2 && System.nanoTime() < deadline) {
                for (Image image : subscription.images()) {
                    image.poll(recording, 1);
                }
            }
            assertTrue(switches(sessions) > 10, "sessions did not interleave: " + switches(sessions) + " switches in " + sessions.size() + " fragments");
            assertEquals(2, sink.delivered.size(), "tensors delivered");
            for (TestFrames.Delivered d : sink.delivered) {
                assertArrayEquals(d.header().getStep() == 4 ? second : first, d.payload(), "step " + d.header().getStep());
            }
            assertEquals(0, receiver.droppedTotal());
        }
    }

    private static int switches(List<Integer> sessions) {
        int switches = 0;
        for (int i = 1; i < sessions.size(); i++) {
            if (!sessions.get(i).equals(sessions.get(i - 1))) {
                switches++;
            }
        }
        return switches;
    }

    private static void pollUntil(java.util.function.BooleanSupplier done, Subscription subscription, FragmentHandler handler) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!done.getAsBoolean()) {
            if (subscription.poll(handler, 16) == 0) {
                Thread.onSpinWait();
            }
            if (System.nanoTime() > deadline) {
                fail("no progress within " + WAIT);
            }
        }
    }
}
