package dev.moelora.cluster.bench;

import dev.moelora.proto.frame.ChannelSettings;
import dev.moelora.proto.frame.DataPlane;
import dev.moelora.proto.frame.IdleSettings;
import dev.moelora.proto.frame.TensorFrameReceiver;
import dev.moelora.proto.frame.TensorFrameSender;

import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import io.aeron.ExclusivePublication;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.aeron.logbuffer.FragmentHandler;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.YieldingIdleStrategy;

/**
 * Tensor-frame throughput with our codec (header, chunking and CRC32C on send; validation, CRC32C
 * and the copy of each fragment into the consumer's buffer on receive) against raw
 * Aeron offers of the same bytes (sent in pieces of at most the maximum message; the receiver only
 * counts fragment bytes), over IPC and UDP loopback on one embedded driver. One sending thread (this
 * one) and one receiving thread; both yield when idle. Prints GB/s (10^9 bytes) and the machine.
 *
 * <p>Must never run in the test suite or have its figures asserted: timings are for BENCHMARKS.md.
 */
public final class FrameBench {
    private static final int[] SIZES = {64 << 10, 1 << 20, 4 << 20};
    private static final Duration DRAIN = Duration.ofSeconds(10);
    private static final int STREAM = 7001;

    private FrameBench() {}

    /** Each figure is measured for {@code perMeasurement} after a warm-up of half as long. */
    public static void run(PrintStream out, Duration perMeasurement) {
        ChannelSettings settings = ChannelSettings.defaults();
        out.println("Tensor frames vs raw Aeron, one sender and one receiver thread (yielding), "
                + perMeasurement.toMillis() + " ms per figure after " + perMeasurement.toMillis() / 2 + " ms warm-up");
        out.println(Machine.describe());
        out.println("driver: embedded, SHARED threading, backoff idle (max park " + IdleSettings.DEFAULT_DRIVER_MAX_PARK.toNanos() / 1000
                + " us); channels: term length " + (settings.termLength() >> 20)
                + " MiB, mtu " + settings.mtu() + ", max message " + (settings.maxMessageLength() >> 20) + " MiB");
        out.printf("%-9s %8s %7s %12s %10s %10s%n", "transport", "tensor", "chunks", "codec GB/s", "raw GB/s", "codec/raw");
        try (DataPlane plane = DataPlane.launchEmbedded()) {
            for (String transport : new String[] {"ipc", "udp"}) {
                for (int bytes : SIZES) {
                    Figure codec = measure(plane, channel(settings, transport), bytes, true, perMeasurement);
                    Figure raw = measure(plane, channel(settings, transport), bytes, false, perMeasurement);
                    out.printf("%-9s %8s %7d %12.2f %10.2f %10.2f%n", transport, size(bytes), codec.messagesPerTensor(),
                            codec.gbPerSecond(), raw.gbPerSecond(), codec.gbPerSecond() / raw.gbPerSecond());
                }
            }
        }
    }

    private static String channel(ChannelSettings settings, String transport) {
        if (transport.equals("ipc")) {
            return settings.ipc();
        }
        try (DatagramSocket probe = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            return settings.udp("127.0.0.1", probe.getLocalPort());
        } catch (IOException e) {
            throw new UncheckedIOException("no free UDP port on 127.0.0.1", e);
        }
    }

    /** GB/s of tensors from send start until the receiver has counted every byte sent, and the messages each tensor took. */
    private record Figure(double gbPerSecond, int messagesPerTensor) {}

    private static Figure measure(DataPlane plane, String channel, int bytes, boolean codec, Duration duration) {
        ByteBuffer source = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
        Random random = new Random(1);
        while (source.hasRemaining()) {
            source.putFloat((float) random.nextGaussian());
        }
        source.clear();
        AtomicLong received = new AtomicLong();
        AtomicBoolean running = new AtomicBoolean(true);
        try (Subscription subscription = plane.subscription(channel, STREAM);
             ExclusivePublication publication = plane.publication(channel, STREAM)) {
            FragmentHandler handler;
            TensorFrameReceiver receiver = null;
            if (codec) {
                ByteBuffer destination = ByteBuffer.allocateDirect(bytes);
                receiver = new TensorFrameReceiver(run -> run == 1, new TensorFrameReceiver.Sink() {
                    @Override
                    public ByteBuffer destination(TensorFrameHeader tensor) {
                        return destination;
                    }

                    @Override
                    public void onTensor(TensorFrameHeader tensor, ByteBuffer buffer) {
                        received.lazySet(received.get() + bytes);
                    }
                });
                handler = receiver;
            } else {
                handler = (buffer, offset, length, header) -> received.lazySet(received.get() + length);
            }
            Thread receiving = new Thread(() -> poll(subscription, handler, running), "frame-benchmark-receiver");
            receiving.start();
            Sending sending = codec ? new CodecSending(publication, source, bytes) : new RawSending(publication, source, bytes);
            try {
                sendFor(sending, bytes, received, duration.dividedBy(2), receiver);
                return sendFor(sending, bytes, received, duration, receiver);
            } finally {
                running.set(false);
                join(receiving);
            }
        }
    }

    private static void poll(Subscription subscription, FragmentHandler handler, AtomicBoolean running) {
        IdleStrategy idle = new YieldingIdleStrategy();
        while (running.get()) {
            idle.idle(subscription.poll(handler, 64));
        }
    }

    private static Figure sendFor(Sending sending, int bytes, AtomicLong received, Duration duration, TensorFrameReceiver receiver) {
        long before = received.get();
        long sent = 0;
        int messages = 0;
        long start = System.nanoTime();
        while (System.nanoTime() - start < duration.toNanos()) {
            messages = sending.sendOne();
            sent += bytes;
        }
        long drainDeadline = System.nanoTime() + DRAIN.toNanos();
        while (received.get() - before < sent) {
            if (System.nanoTime() > drainDeadline) {
                throw new IllegalStateException("receiver got " + (received.get() - before) + " of " + sent + " bytes"
                        + (receiver == null ? "" : ", frames dropped: " + receiver.droppedTotal()));
            }
            Thread.yield();
        }
        return new Figure(sent / (double) (System.nanoTime() - start), messages);
    }

    private static void join(Thread thread) {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while stopping the receiver", e);
        }
    }

    /** One tensor of the benchmark's size, sent one way or the other. */
    private interface Sending {
        /** Returns the number of messages the tensor took. */
        int sendOne();
    }

    private static final class CodecSending implements Sending {
        private final TensorFrameSender sender;
        private final TensorFrameHeader header;
        private final ByteBuffer source;
        private final int bytes;

        CodecSending(Publication publication, ByteBuffer source, int bytes) {
            this.sender = new TensorFrameSender(publication, TensorFrameSender.DEFAULT_DEADLINE, new YieldingIdleStrategy());
            this.header = TensorFrameHeader.newBuilder().setRunId(1).setStep(1).setLayer(3).setModule(1).setExpert(2)
                    .setDirection(Direction.FORWARD_INPUT).setDtype(DType.FLOAT32).addShape(bytes / Float.BYTES / 256).addShape(256)
                    .build();
            this.source = source;
            this.bytes = bytes;
        }

        @Override
        public int sendOne() {
            return sender.send(header, source, 0, bytes);
        }
    }

    /** Plain offers of the same bytes, in pieces of at most the maximum message; retried on back-pressure like the codec. */
    private static final class RawSending implements Sending {
        private final Publication publication;
        private final UnsafeBuffer source;
        private final int bytes;
        private final IdleStrategy idle = new YieldingIdleStrategy();

        RawSending(Publication publication, ByteBuffer source, int bytes) {
            this.publication = publication;
            this.source = new UnsafeBuffer(source);
            this.bytes = bytes;
        }

        @Override
        public int sendOne() {
            int piece = publication.maxMessageLength();
            int messages = 0;
            for (int offset = 0; offset < bytes; offset += piece) {
                int length = Math.min(piece, bytes - offset);
                long deadline = System.nanoTime() + TensorFrameSender.DEFAULT_DEADLINE.toNanos();
                long result;
                while ((result = publication.offer(source, offset, length)) < 0) {
                    if (result == Publication.CLOSED || result == Publication.MAX_POSITION_EXCEEDED
                            || System.nanoTime() > deadline) {
                        throw new IllegalStateException("raw offer failed with " + result + " on " + publication.channel());
                    }
                    idle.idle();
                }
                idle.reset();
                messages++;
            }
            return messages;
        }
    }

    private static String size(int bytes) {
        return bytes >= 1 << 20 ? (bytes >> 20) + " MiB" : (bytes >> 10) + " KiB";
    }
}
