package dev.moelora.proto.frame;

import static dev.moelora.proto.frame.TestFrames.littleEndian;
import static dev.moelora.proto.frame.TestFrames.randomFloats;
import static dev.moelora.proto.frame.TestFrames.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.moelora.proto.frame.TestFrames.Delivered;
import dev.moelora.proto.frame.TestFrames.RecordingSink;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import io.aeron.ExclusivePublication;
import io.aeron.FragmentAssembler;
import io.aeron.Subscription;
import io.aeron.logbuffer.FragmentHandler;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Tensor frames through a real embedded media driver: IPC, one UDP loopback link, back-pressure and
 * deadlines. Must never assert timings: every wait is bounded only so a failure ends instead of hanging.
 * Sending happens on threads of the test's own ({@link #onItsOwnThread}) whose exceptions and failed
 * assertions fail the test.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TensorFrameTransportTest {
    /** 64 KiB terms: maximum message 8 KiB, so chunking shows on small tensors; MTU 1408 exercises both tryClaim and offer. */
    private static final ChannelSettings SMALL_TERMS = new ChannelSettings(64 << 10, 1408);
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final AtomicInteger nextStream = new AtomicInteger(1000);

    private static DataPlane plane;

    @BeforeAll
    static void startDriver() {
        plane = DataPlane.launchEmbedded();
    }

    @AfterAll
    static void stopDriver() {
        plane.close();
    }

    /** One publication and one subscription on a fresh stream, with a receiver that accepts every run. */
    private static final class Link {
        final ExclusivePublication publication;
        final Subscription subscription;
        final RecordingSink sink = RecordingSink.exactDestinations();
        final TensorFrameReceiver receiver = new TensorFrameReceiver(run -> true, sink);

        Link(String channel) {
            int stream = nextStream.getAndIncrement();
            subscription = plane.subscription(channel, stream);
            publication = plane.publication(channel, stream);
        }

        /**
         * Runs {@code sending} on another thread and polls here until {@code expected} tensors arrived and
         * sending ended; a failure of {@code sending} or of any of {@code helpers} fails the test at once.
         */
        List<Delivered> exchange(int expected, Consumer<TensorFrameSender> sending, CompletableFuture<?>... helpers) {
            TensorFrameSender sender = new TensorFrameSender(publication, TensorFrameSender.DEFAULT_DEADLINE);
            CompletableFuture<Void> sent = onItsOwnThread("sender", () -> sending.accept(sender));
            List<CompletableFuture<?>> watched = new ArrayList<>(List.of(helpers));
            watched.add(sent);
            pollUntil(() -> sink.delivered.size() >= expected && sent.isDone(), subscription, receiver, watched);
            await(sent);
            assertEquals(0, receiver.droppedTotal(), "frames dropped");
            assertEquals(expected, sink.delivered.size());
            return sink.delivered;
        }
    }

    /** Polls until {@code done}; fails when {@link #WAIT} passes first or any of {@code helpers} failed. */
    private static void pollUntil(BooleanSupplier done, Subscription subscription, FragmentHandler handler,
                                  List<CompletableFuture<?>> helpers) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!done.getAsBoolean()) {
            if (subscription.poll(handler, 16) == 0) {
                Thread.onSpinWait();
            }
            for (CompletableFuture<?> helper : helpers) {
                if (helper.isCompletedExceptionally()) {
                    await(helper);
                }
            }
            if (System.nanoTime() > deadline) {
                fail("no progress within " + WAIT);
            }
        }
    }

    private static void pollUntil(BooleanSupplier done, Subscription subscription, FragmentHandler handler) {
        pollUntil(done, subscription, handler, List.of());
    }

    /** Runs {@code body} on a thread of its own; whatever it throws (an assertion failure too) completes the future exceptionally. */
    private static CompletableFuture<Void> onItsOwnThread(String name, Runnable body) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Thread thread = new Thread(() -> {
            try {
                body.run();
                done.complete(null);
            } catch (Throwable e) {
                done.completeExceptionally(e);
            }
        }, name);
        thread.setDaemon(true);
        thread.start();
        return done;
    }

    /** Waits up to {@link #WAIT} for a helper thread and rethrows what it threw. */
    private static void await(CompletableFuture<?> helper) {
        try {
            helper.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Error error) {
                throw error;
            }
            if (e.getCause() instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new AssertionError("helper thread failed", e.getCause());
        } catch (TimeoutException e) {
            fail("a helper thread did not finish within " + WAIT);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while waiting for a helper thread", e);
        }
    }

    private static ByteBuffer heap(byte[] bytes) {
        return ByteBuffer.wrap(bytes);
    }

    @Test
    void everyHeaderFieldAndEveryPayloadBitSurviveTheRoundTrip() {
        int[] bits = {
            0x7FC00000, 0x7FC00001, 0xFFA00000, 0x80000000, 0x00000000, 0x00000001, 0x007FFFFF, 0x80000001,
            0x7F800000, 0xFF800000, 0x7F7FFFFF, 0x3F800000,
        };
        byte[] payload = new byte[12 + bits.length * 4];
        ByteBuffer writer = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < bits.length; i++) {
            writer.putInt(12 + 4 * i, bits[i]);
        }
        List<TensorFrameHeader> sent = new ArrayList<>();
        for (Direction direction : List.of(Direction.FORWARD_INPUT, Direction.FORWARD_OUTPUT,
                Direction.BACKWARD_INPUT, Direction.BACKWARD_OUTPUT, Direction.GRADIENT)) {
            sent.add(tensor(2, 3, 2).setRunId(0x1234_5678_9ABCL).setStep(-3 - direction.getNumber()).setMicroBatch(7)
                    .setLayer(-1).setModule(4).setExpert(9).setSource(2).setDirection(direction).build());
        }
        Link link = new Link(ChannelSettings.defaults().ipc());
        List<Delivered> delivered = link.exchange(sent.size(), sender -> {
            for (TensorFrameHeader header : sent) {
                assertEquals(1, sender.send(header, heap(payload), 12, bits.length * 4));
            }
        });
        byte[] expected = Arrays.copyOfRange(payload, 12, payload.length);
        for (int i = 0; i < sent.size(); i++) {
            TensorFrameHeader got = delivered.get(i).header();
            assertEquals(sent.get(i), got.toBuilder().clearChunkCount().clearPayloadCrc32C().build());
            assertEquals(1, got.getChunkCount());
            assertEquals(TestFrames.crc32c(expected, 0, expected.length), got.getPayloadCrc32C());
            assertArrayEquals(expected, delivered.get(i).payload());
        }
    }

    /** A tensor whose single-message length (with the widest CRC) is exactly {@code messageLength}. */
    private static TensorFrameHeader.Builder tensorOfMessageLength(long messageLength) {
        for (int varintBytes = 1; varintBytes <= 9; varintBytes++) {
            long runId = 1L << (7 * (varintBytes - 1));
            for (long floats = (messageLength - 80) / 4; floats <= messageLength / 4; floats++) {
                TensorFrameHeader.Builder candidate = tensor(floats).setRunId(runId);
                if (TensorFrameSender.singleMessageBound(candidate.build(), (int) floats * 4) == messageLength) {
                    return candidate;
                }
            }
        }
        throw new AssertionError("no tensor frames to " + messageLength + " bytes");
    }

    @Test
    void tensorsAtAndAroundTheMaximumMessageLengthAreChunkedOnlyWhenTheyMustBe() {
        int max = SMALL_TERMS.maxMessageLength();
        List<TensorFrameHeader.Builder> tensors = List.of(
                tensorOfMessageLength(max - 1),
                tensorOfMessageLength(max),
                tensorOfMessageLength(max + 1),
                tensor(max * 5 / 8)); // 2.5 maximum messages of payload
        int[] expectedChunks = {1, 1, 2, 3};
        List<byte[]> payloads = new ArrayList<>();
        for (int i = 0; i < tensors.size(); i++) {
            payloads.add(littleEndian(randomFloats((int) tensors.get(i).getShape(0), i)));
        }
        Link link = new Link(SMALL_TERMS.ipc());
        List<Delivered> delivered = link.exchange(tensors.size(), sender -> {
            for (int i = 0; i < tensors.size(); i++) {
                byte[] payload = payloads.get(i);
                assertEquals(expectedChunks[i], sender.send(tensors.get(i).build(), heap(payload), 0, payload.length),
                        "chunks of tensor " + i);
            }
        });
        for (int i = 0; i < tensors.size(); i++) {
            assertEquals(expectedChunks[i], delivered.get(i).header().getChunkCount());
            assertArrayEquals(payloads.get(i), delivered.get(i).payload(), "payload of tensor " + i);
        }
    }

    @Test
    void theSenderWritesTheDocumentedLayoutByteForByte() {
        int max = SMALL_TERMS.maxMessageLength();
        TensorFrameHeader.Builder small = tensor(8);
        TensorFrameHeader.Builder large = tensor(max / 2); // two max messages of payload: three chunks, offered as vectors
        byte[] smallPayload = littleEndian(randomFloats(8, 21));
        byte[] largePayload = littleEndian(randomFloats(max / 2, 22));
        List<byte[]> expected = new ArrayList<>(TestFrames.chunkedMessages(small, smallPayload, Integer.MAX_VALUE));
        expected.addAll(TestFrames.chunkedMessages(large, largePayload,
                TensorFrameSender.chunkBytes(large.build(), largePayload.length, max)));

        int stream = nextStream.getAndIncrement();
        Subscription subscription = plane.subscription(SMALL_TERMS.ipc(), stream);
        TensorFrameSender sender = new TensorFrameSender(plane.publication(SMALL_TERMS.ipc(), stream), Duration.ofSeconds(5));
        List<byte[]> captured = new ArrayList<>();
        FragmentAssembler capture = new FragmentAssembler((buffer, offset, length, header) -> {
            byte[] copy = new byte[length];
            buffer.getBytes(offset, copy);
            captured.add(copy);
        });
        CompletableFuture<Void> sent = onItsOwnThread("sender", () -> {
            sender.send(small.build(), ByteBuffer.wrap(smallPayload), 0, smallPayload.length);
            sender.send(large.build(), ByteBuffer.wrap(largePayload), 0, largePayload.length);
        });
        pollUntil(() -> captured.size() >= expected.size() && sent.isDone(), subscription, capture, List.of(sent));
        await(sent);
        assertEquals(expected.size(), captured.size());
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i), captured.get(i), "message " + i);
        }
    }

    @Test
    void twoSendersSharingOneStreamHaveTheirChunksAssembledPerSender() {
        int tensors = 20;
        int floats = SMALL_TERMS.maxMessageLength() * 3 / 8; // 1.5 messages: two chunks each
        String channel = SMALL_TERMS.ipc();
        Link link = new Link(channel);
        ExclusivePublication second = plane.publication(channel, link.publication.streamId());
        CompletableFuture<Void> fromSecond = onItsOwnThread("second-sender", () -> {
            TensorFrameSender sender = new TensorFrameSender(second, TensorFrameSender.DEFAULT_DEADLINE);
            for (int step = 0; step < tensors; step++) {
                byte[] payload = littleEndian(randomFloats(floats, 1000 + step));
                sender.send(tensor(floats).setSource(1).setStep(step).build(), heap(payload), 0, payload.length);
            }
        });
        List<Delivered> delivered = link.exchange(2 * tensors, sender -> {
            for (int step = 0; step < tensors; step++) {
                byte[] payload = littleEndian(randomFloats(floats, step));
                sender.send(tensor(floats).setSource(0).setStep(step).build(), heap(payload), 0, payload.length);
            }
        }, fromSecond);
        await(fromSecond);
        for (Delivered tensor : delivered) {
            TensorFrameHeader header = tensor.header();
            assertEquals(2, header.getChunkCount());
            long seed = header.getSource() * 1000L + header.getStep();
            assertArrayEquals(littleEndian(randomFloats(floats, seed)), tensor.payload(),
                    "source " + header.getSource() + " step " + header.getStep());
        }
    }

    @Test
    void aChunkedTensorFromADirectBufferRegionCrossesUdpLoopbackBitExact() throws Exception {
        int port;
        try (DatagramSocket probe = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        ChannelSettings udp = new ChannelSettings(1 << 20, ChannelSettings.DEFAULT_MTU); // 128 KiB messages
        int floats = 80_000; // 320 KB: three chunks
        byte[] payload = littleEndian(randomFloats(floats, 31));
        ByteBuffer source = ByteBuffer.allocateDirect(payload.length + 64);
        source.position(64);
        source.put(payload).position(0);
        Link link = new Link(udp.udp("127.0.0.1", port));
        List<Delivered> delivered = link.exchange(1, sender ->
                assertEquals(3, sender.send(tensor(400, 200).build(), source, 64, payload.length)));
        assertArrayEquals(payload, delivered.get(0).payload());
        assertEquals(0, source.position(), "the source's position is put back");
    }

    @Test
    void aSlowSubscriberBackPressuresTheSenderWhichRetriesUntilEveryFrameArrivesIntactAndInOrder() {
        int tensors = 100;
        int floats = 1500; // 6 KB each, 600 KB in all through a 32 KB window
        Link link = new Link(SMALL_TERMS.ipc());
        TensorFrameSender sender = new TensorFrameSender(link.publication, TensorFrameSender.DEFAULT_DEADLINE);
        CompletableFuture<Void> sent = onItsOwnThread("sender", () -> {
            for (int step = 0; step < tensors; step++) {
                byte[] payload = littleEndian(randomFloats(floats, step));
                sender.send(tensor(floats).setStep(step).build(), heap(payload), 0, payload.length);
            }
        });
        // the subscriber does not drain until the sender has met back-pressure, so the retries are certain
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (sender.backPressured() == 0 && System.nanoTime() < deadline) {
            if (sent.isDone()) {
                await(sent);
                fail("600 KB went through a 32 KB window without back-pressure");
            }
            Thread.onSpinWait();
        }
        assertTrue(sender.backPressured() > 0, "the sender never met BACK_PRESSURED");
        int polls = 0;
        while (link.sink.delivered.size() < tensors && System.nanoTime() < deadline && !sent.isCompletedExceptionally()) {
            link.subscription.poll(link.receiver, 1);
            if (++polls % 4 == 0) {
                sleepOneMillisecond();
            }
        }
        await(sent);
        assertEquals(tensors, link.sink.delivered.size());
        for (int step = 0; step < tensors; step++) {
            assertEquals(step, link.sink.delivered.get(step).header().getStep(), "order");
            assertArrayEquals(littleEndian(randomFloats(floats, step)), link.sink.delivered.get(step).payload(), "payload of step " + step);
        }
        assertEquals(0, link.receiver.droppedTotal());
    }

    private static void sleepOneMillisecond() {
        try {
            Thread.sleep(1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    @Test
    void aSubscriberThatNeverDrainsFailsTheSenderWithBackPressureAfterTheDeadline() {
        Link link = new Link(SMALL_TERMS.ipc()); // subscribed, never polled
        pollUntil(link.publication::isConnected, link.subscription, link.receiver);
        Duration deadline = Duration.ofMillis(300);
        TensorFrameSender sender = new TensorFrameSender(link.publication, deadline);
        byte[] payload = littleEndian(randomFloats(1500, 45));
        int[] accepted = {0};
        long start = System.nanoTime();
        IllegalStateException e = assertTimeoutPreemptively(WAIT, () -> assertThrows(IllegalStateException.class, () -> {
            while (true) {
                sender.send(tensor(1500).setStep(accepted[0]).setExpert(4).build(), heap(payload), 0, payload.length);
                accepted[0]++;
            }
        }));
        long waitedNs = System.nanoTime() - start;
        assertTrue(accepted[0] > 0, "the window took no frame at all");
        assertTrue(sender.backPressured() > 1, "refused once, retried: " + sender.backPressured());
        assertEquals(0, sender.notConnected());
        assertTrue(waitedNs >= deadline.toNanos(), "it gave up before its deadline");
        String message = e.getMessage();
        for (String part : List.of("back-pressured", "within " + deadline, "stream " + link.publication.streamId(),
                "step " + accepted[0], "expert 4")) {
            assertTrue(message.contains(part), () -> "'" + part + "' missing from: " + message);
        }
    }

    @Test
    void sendingWithNoSubscriberFailsWithNotConnectedAfterTheDeadline() {
        int stream = nextStream.getAndIncrement();
        ExclusivePublication lonely = plane.publication(SMALL_TERMS.ipc(), stream);
        Duration deadline = Duration.ofMillis(200);
        TensorFrameSender sender = new TensorFrameSender(lonely, deadline);
        byte[] payload = littleEndian(randomFloats(4, 41));
        long start = System.nanoTime();
        IllegalStateException e = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> assertThrows(IllegalStateException.class,
                () -> sender.send(tensor(4).setLayer(6).setModule(1).setExpert(3).build(), heap(payload), 0, 16)));
        assertTrue(System.nanoTime() - start >= deadline.toNanos(), "it gave up before its deadline");
        assertTrue(sender.notConnected() > 1, "refused once, retried: " + sender.notConnected());
        String message = e.getMessage();
        for (String part : List.of("not connected", "aeron:ipc", "stream " + stream, "step 3", "layer 6", "module 1",
                "expert 3", "FORWARD_INPUT")) {
            assertTrue(message.contains(part), () -> "'" + part + "' missing from: " + message);
        }
    }

    @Test
    void sendingOnAClosedPublicationFailsAtOnce() {
        Link link = new Link(SMALL_TERMS.ipc());
        link.publication.close();
        TensorFrameSender sender = new TensorFrameSender(link.publication, Duration.ofSeconds(30));
        byte[] payload = littleEndian(randomFloats(4, 42));
        IllegalStateException e = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> assertThrows(IllegalStateException.class,
                () -> sender.send(tensor(4).build(), heap(payload), 0, 16)));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    @Test
    void aFailureFrameCrossesIpcWithItsAddressAndText() {
        Link link = new Link(SMALL_TERMS.ipc());
        TensorFrameSender sender = new TensorFrameSender(link.publication, TensorFrameSender.DEFAULT_DEADLINE);
        TensorFrameHeader answered = tensor(5, 3).setDirection(Direction.BACKWARD_INPUT).setSource(2).build();
        String text = "expert 2: BACKWARD_INPUT of module 1 failed: IllegalStateException: no forward in micro-batch slot 1";
        CompletableFuture<Void> sent = onItsOwnThread("sender", () -> sender.sendFailure(answered, text));
        pollUntil(() -> link.sink.failures.size() == 1 && sent.isDone(), link.subscription, link.receiver, List.of(sent));
        await(sent);
        TensorFrameHeader expected = answered.toBuilder().setDirection(Direction.FAILURE).clearDtype().clearShape()
                .setChunkCount(1).setFailure(text).build();
        assertEquals(expected, link.sink.failures.get(0));
        assertEquals(0, link.sink.delivered.size());
        assertEquals(0, link.receiver.droppedTotal());
    }

    @Test
    void aFailureTextTooLongForAHeaderIsCutAtACodePointAndMarked() {
        Link link = new Link(SMALL_TERMS.ipc());
        TensorFrameSender sender = new TensorFrameSender(link.publication, TensorFrameSender.DEFAULT_DEADLINE);
        String text = "\u00e9\ud83d\ude00x".repeat(400); // 2-, 4- and 1-byte code points, 2800 bytes in all
        CompletableFuture<Void> sent = onItsOwnThread("sender", () -> sender.sendFailure(tensor(1).build(), text));
        pollUntil(() -> link.sink.failures.size() == 1 && sent.isDone(), link.subscription, link.receiver, List.of(sent));
        await(sent);
        TensorFrameHeader got = link.sink.failures.get(0);
        String cut = got.getFailure();
        assertTrue(got.getSerializedSize() <= FrameLayout.MAX_HEADER_BYTES, got.getSerializedSize() + " header bytes");
        assertTrue(got.getSerializedSize() > FrameLayout.MAX_HEADER_BYTES - 8, "cut more than needed: " + got.getSerializedSize());
        assertTrue(cut.endsWith("..."), cut);
        String kept = cut.substring(0, cut.length() - 3);
        assertTrue(text.startsWith(kept), "a prefix of the text");
        assertEquals(kept.codePointCount(0, kept.length()), kept.codePoints().filter(c -> c != 0xFFFD).count(), "no split code point");
        assertFalse(Character.isHighSurrogate(kept.charAt(kept.length() - 1)), "no split surrogate pair");
        assertThrows(IllegalArgumentException.class, () -> sender.sendFailure(tensor(1).build(), ""));
    }

    @Test
    void theSenderRefusesAHeaderThatDoesNotDescribeThePayload() {
        TensorFrameSender sender = new TensorFrameSender(new Link(SMALL_TERMS.ipc()).publication, Duration.ofMillis(100));
        ByteBuffer payload = heap(littleEndian(randomFloats(6, 43)));
        assertThrows(IllegalArgumentException.class, () -> sender.send(tensor(2, 2).build(), payload, 0, 24));
        assertThrows(IllegalArgumentException.class,
                () -> sender.send(tensor(6).setDtypeValue(0).build(), payload, 0, 24));
        assertThrows(IllegalArgumentException.class,
                () -> sender.send(tensor(6).setChunkCount(1).build(), payload, 0, 24));
        assertThrows(IndexOutOfBoundsException.class, () -> sender.send(tensor(6).build(), payload, 4, 24));
    }

    @Test
    void aSecondClientReachesTheDriverByItsDirectoryAndLeavesItRunning() {
        int stream = nextStream.getAndIncrement();
        String channel = SMALL_TERMS.ipc();
        Subscription subscription = plane.subscription(channel, stream);
        RecordingSink sink = RecordingSink.exactDestinations();
        TensorFrameReceiver receiver = new TensorFrameReceiver(run -> true, sink);
        byte[] payload = littleEndian(randomFloats(100, 44));
        try (DataPlane client = DataPlane.connect(plane.aeronDirectory())) {
            TensorFrameSender sender = new TensorFrameSender(client.publication(channel, stream), Duration.ofSeconds(5));
            sender.send(tensor(100).build(), heap(payload), 0, payload.length);
            pollUntil(() -> sink.delivered.size() == 1, subscription, receiver);
        }
        assertArrayEquals(payload, sink.delivered.get(0).payload());
        assertTrue(Files.isDirectory(Path.of(plane.aeronDirectory())), "the driver's directory outlives its client");
    }

    @Test
    void closingAnEmbeddedDataPlaneDeletesItsDirectory() {
        DataPlane own = DataPlane.launchEmbedded();
        Path directory = Path.of(own.aeronDirectory());
        assertTrue(Files.isDirectory(directory));
        own.close();
        assertFalse(Files.exists(directory), directory + " left behind");
    }
}
