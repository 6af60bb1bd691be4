package dev.moelora.cluster.tensorboard;

import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * Frames records as TFRecords, the container of TensorBoard's event files. Each record is
 * <pre>
 *   uint64 length          little-endian
 *   uint32 masked CRC32C   of the 8 length bytes
 *   byte   data[length]
 *   uint32 masked CRC32C   of the data
 * </pre>
 * with mask(crc) = ((crc >>> 15) | (crc << 17)) + 0xa282ead8 in unsigned 32-bit arithmetic (a CRC
 * of data that itself holds CRCs is weak; the rotation and offset keep them apart). It knows
 * nothing of what the records hold. It never seeks, rewrites or truncates its stream, and never
 * keeps a record in its own buffers past {@link #flush()}. One thread at a time.
 */
public final class TfRecordWriter implements Closeable {
    private static final int MASK_DELTA = 0xa282ead8;

    private final OutputStream out;
    private final ByteBuffer header = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
    private final ByteBuffer footer = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
    private final CRC32C crc = new CRC32C();

    public TfRecordWriter(OutputStream out) {
        this.out = out;
    }

    public void write(byte[] data) throws IOException {
        header.clear();
        header.putLong(data.length);
        header.putInt(maskedCrc32c(header.array(), 0, 8));
        footer.clear();
        footer.putInt(maskedCrc32c(data, 0, data.length));
        out.write(header.array());
        out.write(data);
        out.write(footer.array());
    }

    public void flush() throws IOException {
        out.flush();
    }

    @Override
    public void close() throws IOException {
        out.close();
    }

    /** The masked CRC32C (Castagnoli) of {@code len} bytes of {@code bytes} from {@code offset}, as TFRecord stores it. */
    int maskedCrc32c(byte[] bytes, int offset, int len) {
        crc.reset();
        crc.update(bytes, offset, len);
        int c = (int) crc.getValue();
        return ((c >>> 15) | (c << 17)) + MASK_DELTA;
    }
}
