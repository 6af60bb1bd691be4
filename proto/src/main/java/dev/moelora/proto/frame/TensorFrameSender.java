package dev.moelora.proto.frame;

import com.google.protobuf.CodedOutputStream;
import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import io.aeron.DirectBufferVector;
import io.aeron.Publication;
import io.aeron.logbuffer.BufferClaim;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32C;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Sends tensors as tensor frames ({@link FrameLayout}) on one Aeron publication. A tensor whose frame
 * exceeds {@code publication.maxMessageLength()} is split into chunks, each a whole message with its
 * own header (chunk index, count, byte offset and the CRC32C of its payload).
 *
 * <p>A message that fits {@code maxPayloadLength()} (one MTU) is written in place with
 * {@code tryClaim}; a larger one is offered as two vectors, the header from a reused buffer and the
 * payload straight from the caller's buffer, so the payload is copied once, into the term. Per chunk
 * the sender allocates only the small protobuf header it writes. {@link #sendFailure} sends the
 * FAILURE frame that stands in for a tensor its sender could not compute.
 *
 * <p>Must never wait without bound (every retry of a message is limited by the deadline, after which
 * an {@link IllegalStateException} names the channel, stream and frame), never copy a payload
 * through a Java array, and never be shared between threads: the receiver assembles chunks per
 * publication session, so two tensors must not interleave on one publication. One sender per
 * (exclusive) publication.
 */
public final class TensorFrameSender {
    public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(5);

    private final Publication publication;
    private final long deadlineNs;
    private final IdleStrategy idle;
    private final CRC32C crc = new CRC32C();
    private final BufferClaim claim = new BufferClaim();
    private final UnsafeBuffer payload = new UnsafeBuffer();
    private final byte[] headerBytes = new byte[FrameLayout.LENGTH_PREFIX_BYTES + FrameLayout.MAX_HEADER_BYTES];
    private final UnsafeBuffer header = new UnsafeBuffer(headerBytes);
    private final DirectBufferVector headerVector = new DirectBufferVector();
    private final DirectBufferVector payloadVector = new DirectBufferVector();
    private final DirectBufferVector[] vectors = {headerVector, payloadVector};
    private final AtomicLong backPressured = new AtomicLong();
    private final AtomicLong notConnected = new AtomicLong();
    private final AtomicLong framesSent = new AtomicLong();
    private final AtomicLong bytesSent = new AtomicLong();
    private final AtomicLong sendNanos = new AtomicLong();

    /** Backs off from spinning to 100 µs parks while the publication is back-pressured or not connected. */
    public TensorFrameSender(Publication publication, Duration deadline) {
        this(publication, deadline,
                new BackoffIdleStrategy(100, 10, TimeUnit.MICROSECONDS.toNanos(1), TimeUnit.MICROSECONDS.toNanos(100)));
    }

    /** {@code idle} is this sender's own (idle strategies keep state); {@code deadline} bounds the retrying of each message. */
    public TensorFrameSender(Publication publication, Duration deadline, IdleStrategy idle) {
        if (deadline.isNegative() || deadline.isZero()) {
            throw new IllegalArgumentException("deadline must be positive, got " + deadline);
        }
        this.publication = publication;
        this.deadlineNs = deadline.toNanos();
        this.idle = idle;
    }

    /**
     * Sends {@code source[byteOffset, byteOffset + byteLength)} (little-endian float32, direct or heap,
     * not a read-only heap buffer) as the tensor {@code tensor} describes: run, step, micro-batch, layer,
     * module, expert, source, direction, dtype FLOAT32 and shape with element count * 4 == byteLength.
     * The chunk fields and CRC of {@code tensor} must be unset; the sender fills them in. The source's
     * position and limit are moved while the CRC is computed and put back.
     *
     * @return the number of messages (chunks) sent
     * @throws IllegalArgumentException if the header is not a valid tensor description for the payload
     * @throws IllegalStateException if the publication is closed or at its maximum position, or a
     *     message is not accepted within the deadline; chunks already sent stay sent (the receiver
     *     drops the incomplete tensor when the next one starts)
     */
    public int send(TensorFrameHeader tensor, ByteBuffer source, int byteOffset, int byteLength) {
        checkTensor(tensor, source, byteOffset, byteLength);
        payload.wrap(source, byteOffset, byteLength);
        int maxMessage = publication.maxMessageLength();
        if (singleMessageBound(tensor, byteLength) <= maxMessage) {
            int crc32c = FrameLayout.crc32c(crc, source, byteOffset, byteLength);
            publish(tensor.toBuilder().setChunkCount(1).setPayloadCrc32C(crc32c).build(), 0, byteLength);
            return 1;
        }
        int chunkBytes = chunkBytes(tensor, byteLength, maxMessage);
        int chunkCount = (int) (((long) byteLength + chunkBytes - 1) / chunkBytes);
        for (int index = 0; index < chunkCount; index++) {
            int offset = index * chunkBytes;
            int length = Math.min(chunkBytes, byteLength - offset);
            int crc32c = FrameLayout.crc32c(crc, source, byteOffset + offset, length);
            TensorFrameHeader chunk = tensor.toBuilder()
                    .setChunkIndex(index)
                    .setChunkCount(chunkCount)
                    .setChunkOffset(offset)
                    .setPayloadCrc32C(crc32c)
                    .build();
            publish(chunk, offset, length);
        }
        return chunkCount;
    }

    /**
     * Sends a FAILURE frame in place of the tensor {@code tensor} describes (its run, step,
     * micro-batch, layer, module, expert and source are kept): direction FAILURE, no dtype, shape or
     * payload, one chunk, CRC 0, and {@code failure} as its failure text, cut (marked with "...") where
     * the header would exceed {@link FrameLayout#MAX_HEADER_BYTES}.
     *
     * @throws IllegalArgumentException if {@code failure} is empty
     * @throws IllegalStateException as {@link #send}
     */
    public void sendFailure(TensorFrameHeader tensor, String failure) {
        if (failure.isEmpty()) {
            throw new IllegalArgumentException("a failure frame needs failure text: " + describe(tensor));
        }
        TensorFrameHeader.Builder frame = tensor.toBuilder()
                .setDirection(Direction.FAILURE).clearDtype().clearShape()
                .setChunkIndex(0).setChunkCount(1).setChunkOffset(0).setPayloadCrc32C(0);
        payload.wrap(headerBytes, 0, 0); // no payload: an empty view, never read
        publish(frame.setFailure(fitFailure(frame, failure)).build(), 0, 0);
    }

    /** {@code failure}, or its longest prefix of whole code points marked "...", with which {@code frame} fits {@link FrameLayout#MAX_HEADER_BYTES}. */
    static String fitFailure(TensorFrameHeader.Builder frame, String failure) {
        if (frame.clone().setFailure(failure).build().getSerializedSize() <= FrameLayout.MAX_HEADER_BYTES) {
            return failure;
        }
        String marker = "...";
        // the field's tag is one byte (field 15); its length, at most MAX_HEADER_BYTES, a two-byte varint
        int budget = FrameLayout.MAX_HEADER_BYTES - frame.build().getSerializedSize() - 1 - 2 - marker.length();
        int end = 0;
        int bytes = 0;
        while (end < failure.length()) {
            int codePoint = failure.codePointAt(end);
            int utf8 = codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
            if (bytes + utf8 > budget) {
                break;
            }
            bytes += utf8;
            end += Character.charCount(codePoint);
        }
        return failure.substring(0, end) + marker;
    }

    /** Offers and claims refused because the publication was back-pressured (its subscribers not keeping up), each retried; readable from any thread. */
    public long backPressured() {
        return backPressured.get();
    }

    /** Messages (chunks) accepted by the publication so far; readable from any thread. */
    public long framesSent() {
        return framesSent.get();
    }

    /** Bytes of those messages, headers included; readable from any thread. */
    public long bytesSent() {
        return bytesSent.get();
    }

    /** Nanoseconds spent in accepted sends (header, CRC, copy, offers and their retries); readable from any thread. */
    public long sendNanos() {
        return sendNanos.get();
    }

    /** Offers and claims refused because the publication had no subscriber, each retried; readable from any thread. */
    public long notConnected() {
        return notConnected.get();
    }

    /**
     * Length of the one-message frame for {@code tensor} with room for the widest CRC, so whether a
     * tensor is chunked does not depend on its payload bits. A tensor goes in one message iff this is
     * at most the publication's maximum message length.
     */
    static long singleMessageBound(TensorFrameHeader tensor, int payloadBytes) {
        return (long) FrameLayout.LENGTH_PREFIX_BYTES
                + tensor.getSerializedSize()
                + CodedOutputStream.computeInt32Size(TensorFrameHeader.CHUNK_COUNT_FIELD_NUMBER, 1)
                + CodedOutputStream.computeUInt32Size(TensorFrameHeader.PAYLOAD_CRC32C_FIELD_NUMBER, -1)
                + payloadBytes;
    }

    /**
     * Payload bytes of every chunk but the last: what is left of a message after the widest header any
     * chunk of this tensor can have, rounded down to whole floats.
     */
    static int chunkBytes(TensorFrameHeader tensor, int payloadBytes, int maxMessage) {
        int widestHeader = tensor.getSerializedSize()
                + CodedOutputStream.computeInt32Size(TensorFrameHeader.CHUNK_INDEX_FIELD_NUMBER, Integer.MAX_VALUE)
                + CodedOutputStream.computeInt32Size(TensorFrameHeader.CHUNK_COUNT_FIELD_NUMBER, Integer.MAX_VALUE)
                + CodedOutputStream.computeInt64Size(TensorFrameHeader.CHUNK_OFFSET_FIELD_NUMBER, payloadBytes)
                + CodedOutputStream.computeUInt32Size(TensorFrameHeader.PAYLOAD_CRC32C_FIELD_NUMBER, -1);
        int chunkBytes = (maxMessage - FrameLayout.LENGTH_PREFIX_BYTES - widestHeader) / Float.BYTES * Float.BYTES;
        if (chunkBytes <= 0) {
            throw new IllegalArgumentException("a header of up to " + widestHeader
                    + " bytes leaves no room for payload in a message of at most " + maxMessage + " bytes");
        }
        return chunkBytes;
    }

    private static void checkTensor(TensorFrameHeader tensor, ByteBuffer source, int byteOffset, int byteLength) {
        if (tensor.getDtype() != DType.FLOAT32) {
            throw new IllegalArgumentException("only FLOAT32 tensors are sent, got " + tensor.getDtype());
        }
        long tensorBytes = FrameLayout.tensorBytes(tensor);
        if (tensorBytes != byteLength) {
            throw new IllegalArgumentException("shape " + tensor.getShapeList() + " needs " + tensorBytes
                    + " bytes, payload has " + byteLength);
        }
        if (tensor.getChunkIndex() != 0 || tensor.getChunkCount() != 0 || tensor.getChunkOffset() != 0
                || tensor.getPayloadCrc32C() != 0) {
            throw new IllegalArgumentException("chunk fields and CRC are the sender's to fill in, got chunk "
                    + tensor.getChunkIndex() + "/" + tensor.getChunkCount() + " at " + tensor.getChunkOffset()
                    + ", crc " + tensor.getPayloadCrc32C());
        }
        if (byteOffset < 0 || byteOffset > source.capacity() - byteLength) {
            throw new IndexOutOfBoundsException("payload [" + byteOffset + ", " + ((long) byteOffset + byteLength)
                    + ") outside a buffer of capacity " + source.capacity());
        }
    }

    /** One message: the chunk's header followed by {@code payload[offset, offset + length)}; retried until accepted or the deadline. */
    private void publish(TensorFrameHeader chunk, int offset, int length) {
        long started = System.nanoTime();
        int headerLength = writeHeader(chunk);
        int messageLength = FrameLayout.LENGTH_PREFIX_BYTES + headerLength + length;
        boolean claimable = messageLength <= publication.maxPayloadLength();
        if (!claimable) {
            headerVector.reset(header, 0, FrameLayout.LENGTH_PREFIX_BYTES + headerLength);
            payloadVector.reset(payload, offset, length);
        }
        long firstFailureNs = 0;
        boolean failedBefore = false;
        idle.reset();
        while (true) {
            long result = claimable ? claimAndWrite(messageLength, headerLength, offset, length) : publication.offer(vectors);
            if (result > 0) {
                framesSent.incrementAndGet();
                bytesSent.addAndGet(messageLength);
                sendNanos.addAndGet(System.nanoTime() - started);
                return;
            }
            if (result == Publication.CLOSED) {
                throw new IllegalStateException("publication is closed: " + describe(chunk));
            }
            if (result == Publication.MAX_POSITION_EXCEEDED) {
                throw new IllegalStateException("publication reached its maximum position (a new publication is needed): "
                        + describe(chunk));
            }
            if (result != Publication.BACK_PRESSURED && result != Publication.ADMIN_ACTION
                    && result != Publication.NOT_CONNECTED) {
                throw new IllegalStateException("unexpected publication result " + result + ": " + describe(chunk));
            }
            if (result == Publication.BACK_PRESSURED) {
                backPressured.incrementAndGet();
            } else if (result == Publication.NOT_CONNECTED) {
                notConnected.incrementAndGet();
            }
            long now = System.nanoTime();
            if (!failedBefore) {
                failedBefore = true;
                firstFailureNs = now;
            } else if (now - firstFailureNs > deadlineNs) {
                throw new IllegalStateException("tensor frame not accepted within " + Duration.ofNanos(deadlineNs)
                        + " because the publication is " + retryReason(result) + ": " + describe(chunk));
            }
            idle.idle();
        }
    }

    private long claimAndWrite(int messageLength, int headerLength, int offset, int length) {
        long result = publication.tryClaim(messageLength, claim);
        if (result > 0) {
            MutableDirectBuffer buffer = claim.buffer();
            int at = claim.offset();
            buffer.putBytes(at, header, 0, FrameLayout.LENGTH_PREFIX_BYTES + headerLength);
            if (length > 0) {
                buffer.putBytes(at + FrameLayout.LENGTH_PREFIX_BYTES + headerLength, payload, offset, length);
            }
            claim.commit();
        }
        return result;
    }

    /** Writes [length prefix][header] into {@link #header}; returns the header's length. */
    private int writeHeader(TensorFrameHeader chunk) {
        int headerLength = chunk.getSerializedSize();
        if (headerLength > FrameLayout.MAX_HEADER_BYTES) {
            throw new IllegalArgumentException("header of " + headerLength + " bytes exceeds "
                    + FrameLayout.MAX_HEADER_BYTES + " (shape " + chunk.getShapeList() + ")");
        }
        header.putInt(0, headerLength, ByteOrder.LITTLE_ENDIAN);
        CodedOutputStream out = CodedOutputStream.newInstance(headerBytes, FrameLayout.LENGTH_PREFIX_BYTES, headerLength);
        try {
            chunk.writeTo(out);
        } catch (IOException e) {
            throw new UncheckedIOException("header does not fit its own serialized size", e);
        }
        return headerLength;
    }

    private static String retryReason(long result) {
        if (result == Publication.NOT_CONNECTED) {
            return "not connected (no subscriber)";
        }
        return result == Publication.BACK_PRESSURED ? "back-pressured (subscriber not keeping up)" : "in an admin action";
    }

    private String describe(TensorFrameHeader chunk) {
        return "channel " + publication.channel() + " stream " + publication.streamId()
                + ", frame run " + chunk.getRunId() + " step " + chunk.getStep() + " micro-batch " + chunk.getMicroBatch()
                + " layer " + chunk.getLayer() + " module " + chunk.getModule() + " expert " + chunk.getExpert()
                + " source " + chunk.getSource() + " " + chunk.getDirection()
                + " chunk " + chunk.getChunkIndex() + "/" + chunk.getChunkCount();
    }
}
