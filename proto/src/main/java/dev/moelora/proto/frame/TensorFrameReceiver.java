package dev.moelora.proto.frame;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import io.aeron.logbuffer.FragmentHandler;
import io.aeron.logbuffer.FrameDescriptor;
import io.aeron.logbuffer.Header;
import io.aeron.logbuffer.LogBufferDescriptor;
import io.aeron.protocol.DataHeaderFlyweight;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.LongPredicate;
import java.util.zip.CRC32C;
import org.agrona.BitUtil;
import org.agrona.DirectBuffer;
import org.agrona.collections.Int2ObjectHashMap;
import org.agrona.concurrent.UnsafeBuffer;
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
 * <p>Poll the subscription with this handler itself, never behind Aeron's {@code FragmentAssembler}:
 * the receiver reassembles messages longer than one MTU from their fragments (BEGIN and END flags,
 * per session), copying each fragment's payload from the term buffer to its place in the
 * destination and adding it to the chunk's CRC32C while it is in cache, so a payload is read once
 * from the term and written once. A FragmentAssembler would first copy the whole message into a
 * buffer of its own. Per message the receiver allocates only the parsed protobuf header (with the
 * state protobuf parses it with; the header bytes are gathered in a reused array), and one small
 * record per new publication session; payloads never pass through a Java array.
 *
 * <p>Must never throw out of the handler because of what arrived: a bad message, or a fragment that
 * does not continue its session's message (a gap in the stream's positions, a continuation without a
 * BEGIN, a new BEGIN before the END), is dropped, counted per {@link FrameError} and logged once per
 * kind, and the rest of that message's fragments are skipped; any dropped message also abandons the
 * tensor in progress on its session. Exceptions thrown by the sink propagate. Not thread-safe: one
 * polling thread; the counters may be read from any thread.
 */
public final class TensorFrameReceiver implements FragmentHandler {
    private static final Logger log = LoggerFactory.getLogger(TensorFrameReceiver.class);
    private static final byte BEGIN = FrameDescriptor.BEGIN_FRAG_FLAG;
    private static final byte END = FrameDescriptor.END_FRAG_FLAG;

    /** The consumer's side: where tensors land and who is told when one is complete. Called on the polling thread. */
    public interface Sink {
        /**
         * The buffer the tensor described by {@code tensor} (its first chunk's header) is copied into,
         * starting at the buffer's position and needing {@code shape elements * 4} bytes remaining; or
         * null to reject the tensor as unknown or unexpected. The buffer's position and limit are
         * unchanged when the tensor is delivered, but it may hold part of a tensor that was dropped
         * (asked for before the first chunk's payload has arrived, the tensor may still be dropped).
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

    /** Where a session's current message is. */
    private enum Stage {
        /** Between messages: the next fragment must be a BEGIN. */
        IDLE,
        /** Gathering the length prefix and the header. */
        HEADER,
        /** Copying a tensor chunk's payload into its destination. */
        PAYLOAD,
        /** Counting the payload bytes of a FAILURE frame (there must be none). */
        FAILURE,
        /** The message was dropped: its remaining fragments are ignored. */
        SKIP
    }

    /** One publication session: the message being reassembled from its fragments, and the tensor being assembled from its chunks. */
    private static final class Session {
        // the message in progress
        Stage stage = Stage.IDLE;
        long nextPosition;       // stream position where the message's next fragment must start
        final byte[] headerBytes = new byte[FrameLayout.LENGTH_PREFIX_BYTES + FrameLayout.MAX_HEADER_BYTES];
        final UnsafeBuffer headerView = new UnsafeBuffer(headerBytes);
        int headerFilled;        // bytes of length prefix and header gathered
        int headerLength;        // from the length prefix, once it is complete
        int messageLength;       // bytes of the message so far
        TensorFrameHeader frame; // the message's header, once parsed
        ByteBuffer target;       // where this chunk's payload goes
        int targetIndex;         // target index of its first byte
        int payloadLimit;        // most payload bytes this chunk may carry
        int payloadLength;       // payload bytes so far
        final CRC32C crc = new CRC32C();

        // the tensor in progress
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

        void beginMessage() {
            stage = Stage.HEADER;
            headerFilled = 0;
            messageLength = 0;
            frame = null;
            target = null;
        }
    }

    private final LongPredicate knownRun;
    private final Sink sink;
    private final Int2ObjectHashMap<Session> sessions = new Int2ObjectHashMap<>();
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

    /** Messages (chunks) begun on this receiver so far, valid or not; readable from any thread. */
    public long messagesReceived() {
        return messages.get();
    }

    /** Bytes of those messages (of every fragment handed over); readable from any thread. */
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

    /** One Aeron fragment, as a subscription's poll hands it over (never a FragmentAssembler's reassembled message). */
    @Override
    public void onFragment(DirectBuffer buffer, int offset, int length, Header header) {
        long position = LogBufferDescriptor.computePosition(
                header.termId(), header.termOffset(), header.positionBitsToShift(), header.initialTermId());
        onFragment(header.sessionId(), header.flags(), position, buffer, offset, length);
    }

    /** One whole message {@code buffer[offset, offset + length)} from publication session {@code sessionId}: an unfragmented fragment. */
    public void onMessage(int sessionId, DirectBuffer buffer, int offset, int length) {
        onFragment(sessionId, (byte) (BEGIN | END), 0, buffer, offset, length);
    }

    /**
     * The payload {@code buffer[offset, offset + length)} of the data frame that starts at stream
     * {@code position} of publication session {@code sessionId}, with Aeron's fragment {@code flags}.
     */
    void onFragment(int sessionId, byte flags, long position, DirectBuffer buffer, int offset, int length) {
        bytes.addAndGet(length);
        Session session = sessions.get(sessionId);
        if (session == null) {
            session = new Session();
            sessions.put(sessionId, session);
        }
        if ((flags & BEGIN) != 0) {
            if (session.stage != Stage.IDLE && session.stage != Stage.SKIP) {
                if (firstDrop(FrameError.TRUNCATED, session, sessionId)) {
                    logDrop(FrameError.TRUNCATED, sessionId, session.frame, "a message ended after " + session.messageLength
                            + " bytes without its END fragment: a new message began at position " + position);
                }
            }
            messages.incrementAndGet();
            session.beginMessage();
        } else if (session.stage == Stage.IDLE) {
            if (firstDrop(FrameError.TRUNCATED, session, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, null, "a fragment at position " + position
                        + " continues a message whose BEGIN fragment did not arrive");
            }
        } else if (session.stage != Stage.SKIP && position != session.nextPosition) {
            if (firstDrop(FrameError.TRUNCATED, session, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, session.frame, "fragments of a message are missing between positions "
                        + session.nextPosition + " and " + position + " (after " + session.messageLength + " bytes)");
            }
        }
        session.nextPosition = position + BitUtil.align(DataHeaderFlyweight.HEADER_LENGTH + length, FrameDescriptor.FRAME_ALIGNMENT);
        if (session.stage != Stage.SKIP) {
            session.messageLength += length;
            int used = session.stage == Stage.HEADER ? header(session, sessionId, buffer, offset, length) : 0;
            if (used < length && (session.stage == Stage.PAYLOAD || session.stage == Stage.FAILURE)) {
                payload(session, sessionId, buffer, offset + used, length - used);
            }
        }
        if ((flags & END) != 0) {
            if (session.stage != Stage.SKIP) {
                endOfMessage(session, sessionId);
            }
            session.stage = Stage.IDLE;
        }
    }

    /** Gathers length prefix and header from the fragment; returns the bytes it took (the payload starts after them). */
    private int header(Session session, int sessionId, DirectBuffer buffer, int offset, int length) {
        int used = 0;
        if (session.headerFilled < FrameLayout.LENGTH_PREFIX_BYTES) {
            used = Math.min(FrameLayout.LENGTH_PREFIX_BYTES - session.headerFilled, length);
            buffer.getBytes(offset, session.headerBytes, session.headerFilled, used);
            session.headerFilled += used;
            if (session.headerFilled < FrameLayout.LENGTH_PREFIX_BYTES) {
                return used;
            }
            int headerLength = session.headerView.getInt(0, ByteOrder.LITTLE_ENDIAN);
            if (headerLength < 0 || headerLength > FrameLayout.MAX_HEADER_BYTES) {
                if (firstDrop(FrameError.MALFORMED_HEADER, session, sessionId)) {
                    logDrop(FrameError.MALFORMED_HEADER, sessionId, null, "header length " + headerLength
                            + " is negative or above " + FrameLayout.MAX_HEADER_BYTES);
                }
                return length;
            }
            session.headerLength = headerLength;
        }
        int headerEnd = FrameLayout.LENGTH_PREFIX_BYTES + session.headerLength;
        int take = Math.min(headerEnd - session.headerFilled, length - used);
        buffer.getBytes(offset + used, session.headerBytes, session.headerFilled, take);
        session.headerFilled += take;
        used += take;
        if (session.headerFilled < headerEnd) {
            return used;
        }
        TensorFrameHeader frame;
        try {
            frame = TensorFrameHeader.parser().parseFrom(session.headerBytes, FrameLayout.LENGTH_PREFIX_BYTES, session.headerLength);
        } catch (InvalidProtocolBufferException e) {
            if (firstDrop(FrameError.MALFORMED_HEADER, session, sessionId)) {
                logDrop(FrameError.MALFORMED_HEADER, sessionId, null, "header does not parse: " + e.getMessage());
            }
            return length;
        }
        session.frame = frame;
        accept(session, sessionId, frame);
        return used;
    }

    /** Checks what a header alone can tell, and finds where the chunk's payload goes; stage PAYLOAD or FAILURE after, or SKIP. */
    private void accept(Session session, int sessionId, TensorFrameHeader frame) {
        if (frame.getDirection() == Direction.FAILURE || !frame.getFailure().isEmpty()) {
            session.payloadLength = 0;
            session.stage = Stage.FAILURE; // checked whole at its END, when its payload length is known
            return;
        }
        if (frame.getDtype() != DType.FLOAT32) {
            if (firstDrop(FrameError.UNSUPPORTED_DTYPE, session, sessionId)) {
                logDrop(FrameError.UNSUPPORTED_DTYPE, sessionId, frame, "dtype " + frame.getDtype());
            }
            return;
        }
        if (!knownRun.test(frame.getRunId())) {
            if (firstDrop(FrameError.UNKNOWN_RUN, session, sessionId)) {
                logDrop(FrameError.UNKNOWN_RUN, sessionId, frame, "run " + frame.getRunId() + " is not known here");
            }
            return;
        }
        long tensorBytes = FrameLayout.tensorBytes(frame);
        if (tensorBytes < 0) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, session, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, frame, "shape " + frame.getShapeList()
                        + " has a negative dimension or exceeds " + Integer.MAX_VALUE + " bytes");
            }
            return;
        }
        int chunkCount = frame.getChunkCount();
        int chunkIndex = frame.getChunkIndex();
        if (chunkCount < 1 || chunkIndex < 0 || chunkIndex >= chunkCount) {
            if (firstDrop(FrameError.MALFORMED_HEADER, session, sessionId)) {
                logDrop(FrameError.MALFORMED_HEADER, sessionId, frame, "chunk index " + chunkIndex
                        + " out of range for chunk count " + chunkCount);
            }
            return;
        }
        if (chunkIndex == 0) {
            firstChunk(session, sessionId, frame, tensorBytes);
        } else {
            laterChunk(session, sessionId, frame);
        }
    }

    /** Copies payload bytes of the fragment into place and adds them to the chunk's CRC, or counts them for a FAILURE frame. */
    private void payload(Session session, int sessionId, DirectBuffer buffer, int offset, int length) {
        if (session.stage == Stage.FAILURE) {
            session.payloadLength += length;
            return;
        }
        if (length > session.payloadLimit - session.payloadLength) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, session, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, session.frame, "chunk payload of at least "
                        + ((long) session.payloadLength + length) + " bytes, more than the " + session.payloadLimit
                        + " its shape " + session.frame.getShapeList() + " and offset leave");
            }
            return;
        }
        int at = session.targetIndex + session.payloadLength;
        buffer.getBytes(offset, session.target, at, length);
        FrameLayout.crc32cUpdate(session.crc, session.target, at, length);
        session.payloadLength += length;
    }

    /** The message's END fragment arrived (its stage is not SKIP): the checks that need its length, then delivery. */
    private void endOfMessage(Session session, int sessionId) {
        if (session.stage == Stage.HEADER) {
            if (firstDrop(FrameError.TRUNCATED, session, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, null, "message of " + session.messageLength + " bytes ends inside its "
                        + (session.headerFilled < FrameLayout.LENGTH_PREFIX_BYTES ? "length prefix"
                                : session.headerLength + "-byte header"));
            }
        } else if (session.stage == Stage.FAILURE) {
            failure(session, sessionId, session.frame, session.payloadLength);
        } else if (session.frame.getChunkIndex() == 0) {
            endOfFirstChunk(session, sessionId);
        } else {
            endOfLaterChunk(session, sessionId);
        }
    }

    /** A FAILURE frame, or a frame of another direction that carries failure text. */
    private void failure(Session session, int sessionId, TensorFrameHeader frame, int payloadLength) {
        String invalid = invalidFailure(frame, payloadLength);
        if (invalid != null) {
            if (firstDrop(FrameError.INVALID_FAILURE, session, sessionId)) {
                logDrop(FrameError.INVALID_FAILURE, sessionId, frame, invalid);
            }
            return;
        }
        if (!knownRun.test(frame.getRunId())) {
            if (firstDrop(FrameError.UNKNOWN_RUN, session, sessionId)) {
                logDrop(FrameError.UNKNOWN_RUN, sessionId, frame, "run " + frame.getRunId() + " is not known here");
            }
            return;
        }
        // a whole message that is not the next chunk: the tensor in progress on this session will not be finished
        if (session.inProgress()) {
            abandon(session, sessionId, null);
        }
        session.stage = Stage.IDLE;
        if (!sink.onFailure(frame)) {
            if (firstDrop(FrameError.UNEXPECTED, session, sessionId)) {
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

    private void firstChunk(Session session, int sessionId, TensorFrameHeader frame, long tensorBytes) {
        // a whole message that is not the next chunk: the tensor in progress on this session will not be finished
        if (session.inProgress()) {
            abandon(session, sessionId, null);
        }
        if (frame.getChunkOffset() != 0) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, session, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, frame, "chunk 0 at offset " + frame.getChunkOffset());
            }
            return;
        }
        session.stage = Stage.SKIP; // should the sink throw, the rest of this message is not taken for a new one
        ByteBuffer destination = sink.destination(frame);
        if (destination == null) {
            if (firstDrop(FrameError.UNEXPECTED, session, sessionId)) {
                logDrop(FrameError.UNEXPECTED, sessionId, frame, "the consumer has no destination for it");
            }
            return;
        }
        if (destination.remaining() < tensorBytes) {
            if (firstDrop(FrameError.DESTINATION_TOO_SMALL, session, sessionId)) {
                logDrop(FrameError.DESTINATION_TOO_SMALL, sessionId, frame, "destination has "
                        + destination.remaining() + " bytes remaining, shape " + frame.getShapeList() + " needs " + tensorBytes);
            }
            return;
        }
        startPayload(session, destination, destination.position(), (int) tensorBytes);
    }

    private void laterChunk(Session session, int sessionId, TensorFrameHeader frame) {
        int chunkIndex = frame.getChunkIndex();
        // read before a drop abandons the tensor in progress
        TensorFrameHeader inProgress = session.first;
        int expectedChunk = session.inProgress() ? session.nextChunk : 0;
        if (chunkIndex != expectedChunk) {
            if (firstDrop(FrameError.OUT_OF_ORDER, session, sessionId)) {
                logDrop(FrameError.OUT_OF_ORDER, sessionId, frame, "expected chunk " + expectedChunk + ", got chunk " + chunkIndex);
            }
            return;
        }
        if (!sameTensor(inProgress, frame)) {
            if (firstDrop(FrameError.OUT_OF_ORDER, session, sessionId)) {
                logDrop(FrameError.OUT_OF_ORDER, sessionId, frame, "chunk " + chunkIndex
                        + " belongs to another tensor than the one in progress: " + brief(inProgress));
            }
            return;
        }
        long expectedOffset = (long) chunkIndex * session.chunkBytes;
        long expectedLength = chunkIndex == frame.getChunkCount() - 1
                ? session.tensorBytes - expectedOffset
                : session.chunkBytes;
        if (frame.getChunkOffset() != expectedOffset) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, session, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, frame, "chunk at offset " + frame.getChunkOffset()
                        + ", expected offset " + expectedOffset + " with " + expectedLength + " bytes");
            }
            return;
        }
        startPayload(session, session.destination, session.base + (int) expectedOffset, (int) expectedLength);
    }

    private static void startPayload(Session session, ByteBuffer target, int targetIndex, int payloadLimit) {
        session.target = target;
        session.targetIndex = targetIndex;
        session.payloadLimit = payloadLimit;
        session.payloadLength = 0;
        session.crc.reset();
        session.stage = Stage.PAYLOAD;
    }

    private void endOfFirstChunk(Session session, int sessionId) {
        TensorFrameHeader frame = session.frame;
        int chunkCount = frame.getChunkCount();
        int payloadLength = session.payloadLength;
        long tensorBytes = session.payloadLimit;
        // Chunk 0 sets the chunk size: the tensor must need all chunk_count chunks of that size, the last one non-empty.
        long shortOf = tensorBytes - (long) chunkCount * payloadLength;
        if (shortOf > 0) {
            if (firstDrop(FrameError.TRUNCATED, session, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, frame, chunkCount + " chunks of " + payloadLength
                        + " payload bytes are " + shortOf + " short of shape " + frame.getShapeList());
            }
            return;
        }
        if (chunkCount > 1 && (long) (chunkCount - 1) * payloadLength >= tensorBytes) {
            if (firstDrop(FrameError.SHAPE_MISMATCH, session, sessionId)) {
                logDrop(FrameError.SHAPE_MISMATCH, sessionId, frame, chunkCount + " chunks of " + payloadLength
                        + " payload bytes are more than shape " + frame.getShapeList() + " needs (" + tensorBytes + " bytes)");
            }
            return;
        }
        if (!crcMatches(session, sessionId)) {
            return;
        }
        ByteBuffer destination = session.target;
        if (chunkCount == 1) {
            session.stage = Stage.IDLE;
            sink.onTensor(frame, destination);
            return;
        }
        session.first = frame;
        session.destination = destination;
        session.base = session.targetIndex;
        session.chunkBytes = payloadLength;
        session.tensorBytes = tensorBytes;
        session.nextChunk = 1;
    }

    private void endOfLaterChunk(Session session, int sessionId) {
        TensorFrameHeader frame = session.frame;
        if (session.payloadLength < session.payloadLimit) {
            if (firstDrop(FrameError.TRUNCATED, session, sessionId)) {
                logDrop(FrameError.TRUNCATED, sessionId, frame, "chunk of " + session.payloadLength
                        + " payload bytes, expected " + session.payloadLimit);
            }
            return;
        }
        if (!crcMatches(session, sessionId)) {
            return;
        }
        session.nextChunk++;
        if (session.nextChunk == frame.getChunkCount()) {
            TensorFrameHeader first = session.first;
            ByteBuffer destination = session.destination;
            session.clear();
            session.stage = Stage.IDLE;
            sink.onTensor(first, destination);
        }
    }

    /** Whether the CRC32C gathered over the chunk's payload, as it was copied into place, is the header's; counted and dropped if not. */
    private boolean crcMatches(Session session, int sessionId) {
        int actual = (int) session.crc.getValue();
        TensorFrameHeader frame = session.frame;
        if (actual != frame.getPayloadCrc32C()) {
            if (firstDrop(FrameError.CRC_MISMATCH, session, sessionId)) {
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
     * Counts one dropped message, skips the rest of its fragments and abandons the tensor in progress on
     * its session; true on the first drop of this kind, when the caller logs the details (built only then).
     */
    private boolean firstDrop(FrameError kind, Session session, int sessionId) {
        boolean first = dropped.incrementAndGet(kind.ordinal()) == 1;
        session.stage = Stage.SKIP;
        if (session.inProgress()) {
            abandon(session, sessionId, kind);
        }
        return first;
    }

    private static void logDrop(FrameError kind, int sessionId, TensorFrameHeader frame, String detail) {
        log.warn("Dropped a tensor frame ({}) from session {}: {}{}. Further {} drops are counted, not logged.",
                kind, sessionId, detail, frame == null ? "" : " [" + brief(frame) + "]", kind);
    }

    /** {@code cause} is the kind of the dropped message that ended the tensor, or null when a new chunk 0 did. */
    private void abandon(Session session, int sessionId, FrameError cause) {
        if (dropped.incrementAndGet(FrameError.INCOMPLETE.ordinal()) == 1) {
            log.warn("Abandoned an incomplete tensor from session {} after {} of {} chunks because {} [{}]. "
                            + "Further INCOMPLETE tensors are counted, not logged.",
                    sessionId, session.nextChunk, session.first.getChunkCount(),
                    cause == null ? "chunk 0 of a new tensor or a failure frame arrived" : "a message on its session was dropped (" + cause + ")",
                    brief(session.first));
        }
        session.clear();
    }

    private static String brief(TensorFrameHeader frame) {
        return "run " + frame.getRunId() + " step " + frame.getStep() + " micro-batch " + frame.getMicroBatch()
                + " layer " + frame.getLayer() + " module " + frame.getModule() + " expert " + frame.getExpert()
                + " source " + frame.getSource() + " " + frame.getDirection() + " shape " + frame.getShapeList()
                + " chunk " + frame.getChunkIndex() + "/" + frame.getChunkCount();
    }
}
