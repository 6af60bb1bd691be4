package dev.moelora.proto.frame;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import io.aeron.logbuffer.FragmentHandler;
import io.aeron.logbuffer.Header;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.LongPredicate;
import java.util.zip.CRC32C;
import org.agrona.DirectBuffer;
import org.agrona.collections.Int2ObjectHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Receives tensor frames ({@link FrameLayout}) from an Aeron subscription: validates each message,
 * copies each chunk's payload straight into the destination the {@link Sink} supplies, and hands the
 * tensor to the sink once its last chunk has arrived. Chunks are assembled per publication session
 * (one {@link TensorFrameSender} per publication), so several senders may share a stream. A
 * {@link Direction#FAILURE} frame (a header alone: no payload, shape, dtype or chunking, and a
 * non-empty failure text) goes to {@link Sink#onFailure}; failure text on any other frame is invalid.
 *
 * <p>Use it wrapped in {@code new FragmentAssembler(receiver)}: Aeron reassembles messages longer than
 * one MTU and this class sees whole messages. Per message it allocates only the parsed protobuf header
 * (with the state protobuf parses it with; the header bytes are read through a reused array), and
 * one small record per new publication session; payloads never pass through a Java array.
 *
 * <p>Must never throw out of the handler because of what arrived: a bad message is dropped, counted
 * per {@link FrameError} and logged once per kind; any dropped message also abandons the tensor in
 * progress on its session. Exceptions thrown by the sink propagate. Not thread-safe: one polling
 * thread; the counters may be read from any thread.
 */
public final class TensorFrameReceiver implements FragmentHandler {
    private static final Logger log = LoggerFactory.getLogger(TensorFrameReceiver.class);

    /** The consumer's side: where tensors land and who is told when one is complete. Called on the polling thread. */
    public interface Sink {
        /**
         * The buffer the tensor described by {@code tensor} (its first chunk's header) is copied into,
         * starting at the buffer's position and needing {@code shape elements * 4} bytes remaining; or
         * null to reject the tensor as unknown or unexpected. The buffer's position and limit are
         * unchanged when the tensor is delivered, but it may hold part of a tensor that was dropped.
         * Tensors from different sessions may be in progress at once: one buffer per tensor in flight.
         */
        ByteBuffer destination(TensorFrameHeader tensor);

        /** Every chunk of {@code tensor} has arrived intact in {@code destination}, from its position on. */
        void onTensor(TensorFrameHeader tensor, ByteBuffer destination);

        /**
         * A well-formed FAILURE frame of a known run: the sender could not produce the tensor it
         * addresses, {@code failure.getFailure()} says why. Return false when nothing here awaits it
         * (it is then counted {@link FrameError#UNEXPECTED}); only a consumer of experts' answers does,
         * so by default every FAILURE frame is unexpected.
         */
        default boolean onFailure(TensorFrameHeader failure) {
            return false;
        }
    }

    /** A tensor being assembled from one publication session. */
    private static final class Assembly {
        TensorFrameHeader first; // header of chunk 0; null when no tensor is in progress
        ByteBuffer destination;
        int base;                // destination's position when chunk 0 arrived
        int chunkBytes;          // payload bytes of every chunk but the last
        long tensorBytes;
        int nextChunk;

        boolean inProgress() {
            return first != null;
        }

        void clear() {
            first = null;
            destination = null;
        }
    }

    private final LongPredicate knownRun;
    private final Sink sink;
    private final CRC32C crc = new CRC32C();
    private final byte[] headerBytes = new byte[FrameLayout.MAX_HEADER_BYTES];
    private final Int2ObjectHashMap<Assembly> assemblies = new Int2ObjectHashMap<>();
    private final AtomicLongArray dropped = new AtomicLongArray(FrameError.values().length);
    private final AtomicLong messages = new AtomicLong();
    private final AtomicLong bytes = new AtomicLong();

    /** {@code knownRun} decides which run ids are accepted; it is called on the polling thread. */
    public TensorFrameReceiver(LongPredicate knownRun, Sink sink) {
        this.knownRun = knownRun;
        this.sink = sink;
    }

    /** How many messages (tensors, for {@link FrameError#INCOMPLETE}) were dropped for {@code kind}. */
    public long dropped(FrameError kind) {
        return dropped.get(kind.ordinal());
    }

    /** Messages (chunks) handed to this receiver so far, valid or not; readable from any thread. */
    public long messagesReceived() {
        return messages.get();
    }

    /** Bytes of those messages; readable from any thread. */
    public long bytesReceived() {
        return bytes.get();
    }

    /** Sum over every kind. */
    public long droppedTotal() {
        long total = 0;
        for (int i = 0; i < dropped.length(); i++) {
            total += dropped.get(i);
        }
        return total;
    }

    @Override
    public void onFragment(DirectBuffer buffer, int offset, int length, Header header) {
        onMessage(header.sessionId(), buffer, offset, length);
    }

    /** One whole message {@code buffer[offset, offset + length)} from publication session {@code sessionId}. */
    public void onMessage(int sessionId, DirectBuffer buffer, int offset, int length) {
        messages.incrementAndGet();
        bytes.addAndGet(length);
        Assembly assembly = assemblies.get(sessionId);
        if (assembly == null) {
            assembly = new Assembly();
            assemblies.put(sessionId, assembly);
        }
        if (length < FrameLayout.LENGTH_PREFIX_BYTES) {
            if (firstDrop(FrameError.TRUNCATED, assembly, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, null, "message of " + length + " bytes has no length prefix");
            }
            return;
        }
        int headerLength = buffer.getInt(offset, ByteOrder.LITTLE_ENDIAN);
        if (headerLength < 0 || headerLength > FrameLayout.MAX_HEADER_BYTES) {
            if (firstDrop(FrameError.MALFORMED_HEADER, assembly, sessionId)) {
                logDrop(FrameError.MALFORMED_HEADER, sessionId, null, "header length " + headerLength
                        + " is negative or above " + FrameLayout.MAX_HEADER_BYTES);
            }
            return;
        }
        int payloadLength = length - FrameLayout.LENGTH_PREFIX_BYTES - headerLength;
        if (payloadLength < 0) {
            if (firstDrop(FrameError.TRUNCATED, assembly, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, null, "header of " + headerLength
                        + " bytes runs past the end of a " + length + "-byte message");
            }
            return;
        }
        buffer.getBytes(offset + FrameLayout.LENGTH_PREFIX_BYTES, headerBytes, 0, headerLength);
        TensorFrameHeader frame;
        try {
            frame = TensorFrameHeader.parser().parseFrom(headerBytes, 0, headerLength);
        } catch (InvalidProtocolBufferException e) {
            if (firstDrop(FrameError.MALFORMED_HEADER, assembly, sessionId)) {
                logDrop(FrameError.MALFORMED_HEADER, sessionId, null, "header does not parse: " + e.getMessage());
            }
            return;
        }
        if (frame.getDirection() == Direction.FAILURE || !frame.getFailure().isEmpty()) {
            failure(assembly, sessionId, frame, payloadLength);
            return;
        }
        if (frame.getDtype() != DType.FLOAT32) {
            if (firstDrop(FrameError.UNSUPPORTED_DTYPE, assembly, sessionId)) {
                logDrop(FrameError.UNSUPPORTED_DTYPE, sessionId, frame, "dtype " + frame.getDtype());
            }
            return;
        }
        if (!knownRun.test(frame.getRunId())) {
            if (firstDrop(FrameError.UNKNOWN_RUN, assembly, sessionId)) {
                logDrop(FrameError.UNKNOWN_RUN, sessionId, frame, "run " + frame.getRunId() + " is not known here");
            }
            return;
        }
        long tensorBytes = FrameLayout.tensorBytes(frame);
        if (tensorBytes < 0) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, assembly, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, frame, "shape " + frame.getShapeList()
                        + " has a negative dimension or exceeds " + Integer.MAX_VALUE + " bytes");
            }
            return;
        }
        int chunkCount = frame.getChunkCount();
        int chunkIndex = frame.getChunkIndex();
        if (chunkCount < 1 || chunkIndex < 0 || chunkIndex >= chunkCount) {
            if (firstDrop(FrameError.MALFORMED_HEADER, assembly, sessionId)) {
                logDrop(FrameError.MALFORMED_HEADER, sessionId, frame, "chunk index " + chunkIndex
                        + " out of range for chunk count " + chunkCount);
            }
            return;
        }
        int payloadOffset = offset + FrameLayout.LENGTH_PREFIX_BYTES + headerLength;
        if (chunkIndex == 0) {
            if (assembly.inProgress()) {
                abandon(assembly, sessionId, null);
            }
            firstChunk(assembly, sessionId, frame, tensorBytes, buffer, payloadOffset, payloadLength);
        } else {
            laterChunk(assembly, sessionId, frame, buffer, payloadOffset, payloadLength);
        }
    }

    /** A FAILURE frame, or a frame of another direction that carries failure text. */
    private void failure(Assembly assembly, int sessionId, TensorFrameHeader frame, int payloadLength) {
        String invalid = invalidFailure(frame, payloadLength);
        if (invalid != null) {
            if (firstDrop(FrameError.INVALID_FAILURE, assembly, sessionId)) {
                logDrop(FrameError.INVALID_FAILURE, sessionId, frame, invalid);
            }
            return;
        }
        if (!knownRun.test(frame.getRunId())) {
            if (firstDrop(FrameError.UNKNOWN_RUN, assembly, sessionId)) {
                logDrop(FrameError.UNKNOWN_RUN, sessionId, frame, "run " + frame.getRunId() + " is not known here");
            }
            return;
        }
        // a whole message that is not the next chunk: the tensor in progress on this session will not be finished
        if (assembly.inProgress()) {
            abandon(assembly, sessionId, null);
        }
        if (!sink.onFailure(frame)) {
            if (firstDrop(FrameError.UNEXPECTED, assembly, sessionId)) {
                logDrop(FrameError.UNEXPECTED, sessionId, frame, "the consumer does not await this failure: " + frame.getFailure());
            }
        }
    }

    /** Why a frame with failure text or direction FAILURE is not a valid FAILURE frame; null when it is one. */
    private static String invalidFailure(TensorFrameHeader frame, int payloadLength) {
        if (frame.getDirection() != Direction.FAILURE) {
            return "a " + frame.getDirection() + " frame carries failure text";
        }
        if (frame.getFailure().isEmpty()) {
            return "a FAILURE frame without failure text";
        }
        if (payloadLength != 0 || frame.getShapeCount() != 0 || frame.getDtype() != DType.DTYPE_UNSPECIFIED) {
            return "a FAILURE frame with " + payloadLength + " payload bytes, shape " + frame.getShapeList()
                    + " and dtype " + frame.getDtype() + " (it carries no tensor)";
        }
        if (frame.getChunkIndex() != 0 || frame.getChunkCount() != 1 || frame.getChunkOffset() != 0
                || frame.getPayloadCrc32C() != 0) {
            return "a FAILURE frame as chunk " + frame.getChunkIndex() + "/" + frame.getChunkCount() + " at "
                    + frame.getChunkOffset() + " with crc " + Integer.toUnsignedString(frame.getPayloadCrc32C(), 16)
                    + " (it is one message, chunk 0/1 at 0, crc 0)";
        }
        return null;
    }

    private void firstChunk(Assembly assembly, int sessionId, TensorFrameHeader frame, long tensorBytes,
                            DirectBuffer buffer, int payloadOffset, int payloadLength) {
        int chunkCount = frame.getChunkCount();
        if (frame.getChunkOffset() != 0) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, assembly, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, frame, "chunk 0 at offset " + frame.getChunkOffset());
            }
            return;
        }
        // Chunk 0 sets the chunk size: the tensor must need all chunk_count chunks of that size, the last one non-empty.
        long shortOf = tensorBytes - (long) chunkCount * payloadLength;
        if (shortOf > 0) {
            if (firstDrop(FrameError.TRUNCATED, assembly, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, frame, chunkCount + " chunks of " + payloadLength
                        + " payload bytes are " + shortOf + " short of shape " + frame.getShapeList());
            }
            return;
        }
        if (chunkCount == 1 ? payloadLength != tensorBytes : (long) (chunkCount - 1) * payloadLength >= tensorBytes) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, assembly, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, frame, chunkCount + " chunks of " + payloadLength
                        + " payload bytes are more than shape " + frame.getShapeList() + " needs (" + tensorBytes + " bytes)");
            }
            return;
        }
        ByteBuffer destination = sink.destination(frame);
        if (destination == null) {
            if (firstDrop(FrameError.UNEXPECTED, assembly, sessionId)) {
                logDrop(FrameError.UNEXPECTED, sessionId, frame, "the consumer has no destination for it");
            }
            return;
        }
        if (destination.remaining() < tensorBytes) {
            if (firstDrop(FrameError.DESTINATION_TOO_SMALL, assembly, sessionId)) {
                logDrop(FrameError.DESTINATION_TOO_SMALL, sessionId, frame, "destination has "
                        + destination.remaining() + " bytes remaining, shape " + frame.getShapeList() + " needs " + tensorBytes);
            }
            return;
        }
        int base = destination.position();
        if (!copyChecked(assembly, sessionId, frame, buffer, payloadOffset, payloadLength, destination, base)) {
            return;
        }
        if (chunkCount == 1) {
            sink.onTensor(frame, destination);
            return;
        }
        assembly.first = frame;
        assembly.destination = destination;
        assembly.base = base;
        assembly.chunkBytes = payloadLength;
        assembly.tensorBytes = tensorBytes;
        assembly.nextChunk = 1;
    }

    private void laterChunk(Assembly assembly, int sessionId, TensorFrameHeader frame,
                            DirectBuffer buffer, int payloadOffset, int payloadLength) {
        int chunkIndex = frame.getChunkIndex();
        // read before a drop abandons the tensor in progress
        TensorFrameHeader inProgress = assembly.first;
        int expectedChunk = assembly.inProgress() ? assembly.nextChunk : 0;
        if (chunkIndex != expectedChunk) {
            if (firstDrop(FrameError.OUT_OF_ORDER, assembly, sessionId)) {
                logDrop(FrameError.OUT_OF_ORDER, sessionId, frame, "expected chunk " + expectedChunk + ", got chunk " + chunkIndex);
            }
            return;
        }
        if (!sameTensor(inProgress, frame)) {
            if (firstDrop(FrameError.OUT_OF_ORDER, assembly, sessionId)) {
                logDrop(FrameError.OUT_OF_ORDER, sessionId, frame, "chunk " + chunkIndex
                        + " belongs to another tensor than the one in progress: " + brief(inProgress));
            }
            return;
        }
        long expectedOffset = (long) chunkIndex * assembly.chunkBytes;
        long expectedLength = chunkIndex == frame.getChunkCount() - 1
                ? assembly.tensorBytes - expectedOffset
                : assembly.chunkBytes;
        if (frame.getChunkOffset() != expectedOffset || payloadLength > expectedLength) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, assembly, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, frame, "chunk at offset " + frame.getChunkOffset()
                        + " with " + payloadLength + " bytes, expected offset " + expectedOffset + " with " + expectedLength);
            }
            return;
        }
        if (payloadLength < expectedLength) {
            if (firstDrop(FrameError.TRUNCATED, assembly, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, frame, "chunk of " + payloadLength
                        + " payload bytes, expected " + expectedLength);
            }
            return;
        }
        ByteBuffer destination = assembly.destination;
        if (!copyChecked(assembly, sessionId, frame, buffer, payloadOffset, payloadLength, destination,
                assembly.base + (int) expectedOffset)) {
            return;
        }
        assembly.nextChunk++;
        if (assembly.nextChunk == frame.getChunkCount()) {
            TensorFrameHeader first = assembly.first;
            assembly.clear();
            sink.onTensor(first, destination);
        }
    }

    /** Copies the chunk's payload into place, then checks its CRC there (no intermediate copy); false if it was dropped. */
    private boolean copyChecked(Assembly assembly, int sessionId, TensorFrameHeader frame, DirectBuffer buffer,
                                int payloadOffset, int payloadLength, ByteBuffer destination, int at) {
        buffer.getBytes(payloadOffset, destination, at, payloadLength);
        int actual = FrameLayout.crc32c(crc, destination, at, payloadLength);
        if (actual != frame.getPayloadCrc32C()) {
            if (firstDrop(FrameError.CRC_MISMATCH, assembly, sessionId)) {
                logDrop(FrameError.CRC_MISMATCH, sessionId, frame, "payload CRC32C "
                        + Integer.toUnsignedString(actual, 16) + ", header says "
                        + Integer.toUnsignedString(frame.getPayloadCrc32C(), 16));
            }
            return false;
        }
        return true;
    }

    private static boolean sameTensor(TensorFrameHeader a, TensorFrameHeader b) {
        return a.getRunId() == b.getRunId() && a.getStep() == b.getStep() && a.getMicroBatch() == b.getMicroBatch()
                && a.getLayer() == b.getLayer() && a.getModule() == b.getModule() && a.getExpert() == b.getExpert()
                && a.getSource() == b.getSource() && a.getDirection() == b.getDirection()
                && a.getChunkCount() == b.getChunkCount() && a.getShapeList().equals(b.getShapeList());
    }

    /**
     * Counts one dropped message and abandons the tensor in progress on its session; true on the first
     * drop of this kind, when the caller logs the details (built only then).
     */
    private boolean firstDrop(FrameError kind, Assembly assembly, int sessionId) {
        boolean first = dropped.incrementAndGet(kind.ordinal()) == 1;
        if (assembly.inProgress()) {
            abandon(assembly, sessionId, kind);
        }
        return first;
    }

    private static void logDrop(FrameError kind, int sessionId, TensorFrameHeader frame, String detail) {
        log.warn("Dropped a tensor frame ({}) from session {}: {}{}. Further {} drops are counted, not logged.",
                kind, sessionId, detail, frame == null ? "" : " [" + brief(frame) + "]", kind);
    }

    /** {@code cause} is the kind of the dropped message that ended the tensor, or null when a new chunk 0 did. */
    private void abandon(Assembly assembly, int sessionId, FrameError cause) {
        if (dropped.incrementAndGet(FrameError.INCOMPLETE.ordinal()) == 1) {
            log.warn("Abandoned an incomplete tensor from session {} after {} of {} chunks because {} [{}]. "
                            + "Further INCOMPLETE tensors are counted, not logged.",
                    sessionId, assembly.nextChunk, assembly.first.getChunkCount(),
                    cause == null ? "chunk 0 of a new tensor or a failure frame arrived" : "a message on its session was dropped (" + cause + ")",
                    brief(assembly.first));
        }
        assembly.clear();
    }

    private static String brief(TensorFrameHeader frame) {
        return "run " + frame.getRunId() + " step " + frame.getStep() + " micro-batch " + frame.getMicroBatch()
                + " layer " + frame.getLayer() + " module " + frame.getModule() + " expert " + frame.getExpert()
                + " source " + frame.getSource() + " " + frame.getDirection() + " shape " + frame.getShapeList()
                + " chunk " + frame.getChunkIndex() + "/" + frame.getChunkCount();
    }
}
