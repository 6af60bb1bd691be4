package dev.moelora.proto.frame;

import dev.moelora.proto.wire.TensorFrameHeader;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * The byte layout of one tensor-frame message, shared by {@link TensorFrameSender} and
 * {@link TensorFrameReceiver}:
 *
 * <pre>[int32 little-endian header length][TensorFrameHeader][payload: little-endian float32]</pre>
 *
 * <p>A message longer than the channel's MTU travels as several Aeron fragments (BEGIN, middle ones,
 * END, contiguous on their session's stream); the layout is that of the whole message, and the
 * receiver reads it fragment by fragment, so the header may end, and the payload start, in any of them.
 *
 * <p>Must never hold state or know about Aeron: it is arithmetic on headers and buffers.
 */
final class FrameLayout {
    static final int LENGTH_PREFIX_BYTES = Integer.BYTES;
    /** Headers are tens of bytes; a cap keeps a corrupt length from growing the receiver's scratch. */
    static final int MAX_HEADER_BYTES = 1024;

    private FrameLayout() {}

    /**
     * Bytes of the whole tensor, element count * 4 (a scalar, shape {@code []}, is one element); -1 if a
     * dimension is negative or the tensor would not fit a ByteBuffer (more than Integer.MAX_VALUE bytes).
     */
    static long tensorBytes(TensorFrameHeader header) {
        long bytes = Float.BYTES;
        for (int i = 0; i < header.getShapeCount(); i++) {
            long dim = header.getShape(i);
            if (dim < 0 || (dim != 0 && bytes > Integer.MAX_VALUE / dim)) {
                return -1;
            }
            bytes *= dim;
        }
        return bytes;
    }

    /** CRC32C of {@code buffer[index, index + length)}; the buffer as for {@link #crc32cUpdate}. */
    static int crc32c(CRC32C crc, ByteBuffer buffer, int index, int length) {
        crc.reset();
        crc32cUpdate(crc, buffer, index, length);
        return (int) crc.getValue();
    }

    /**
     * Adds {@code buffer[index, index + length)} to {@code crc} (a payload copied in pieces is checked
     * piece by piece, each while it is still in cache). The CRC reads through the buffer's position
     * and limit, so they are moved and put back: the caller must own the buffer for the duration.
     */
    static void crc32cUpdate(CRC32C crc, ByteBuffer buffer, int index, int length) {
        int position = buffer.position();
        int limit = buffer.limit();
        buffer.limit(index + length).position(index);
        crc.update(buffer);
        buffer.limit(limit).position(position);
    }
}
