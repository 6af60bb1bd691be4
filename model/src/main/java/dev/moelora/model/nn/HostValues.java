package dev.moelora.model.nn;

import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Bulk copies between an ND4J buffer (FLOAT or DOUBLE, as Slabs hold them) and a Java double
 * array, for the loops that must run in Java: one pass through a java.nio view of the native
 * memory instead of a virtual {@code getDouble}/{@code put} per element. The values are exactly
 * those {@code DataBuffer.getDouble} and {@code put(long, double)} give: float widened to double on
 * the way in, rounded to float on the way out. Offsets count elements from the buffer's start (a
 * Slab view's {@code data()} is the whole Slab). It allocates only the nio view of each call.
 */
public final class HostValues {
    private HostValues() {}

    /** dst[0, n) = the buffer's first n values. */
    public static void read(DataBuffer b, double[] dst, int n) {
        read(b, 0, dst, 0, n);
    }

    /** The buffer's first n values = src[0, n), rounded to the buffer's type. */
    public static void write(double[] src, DataBuffer b, int n) {
        write(src, 0, b, 0, n);
    }

    /** dst[to, to + n) = the buffer's values [from, from + n). */
    public static void read(DataBuffer b, int from, double[] dst, int to, int n) {
        if (b.dataType() == DataType.FLOAT) {
            FloatBuffer f = b.asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
            for (int i = 0; i < n; i++) dst[to + i] = f.get(from + i);
        } else if (b.dataType() == DataType.DOUBLE) {
            b.asNio().order(ByteOrder.nativeOrder()).asDoubleBuffer().get(from, dst, to, n);
        } else {
            for (int i = 0; i < n; i++) dst[to + i] = b.getDouble(from + i);
        }
    }

    /** The buffer's values [at, at + n) = src[from, from + n), rounded to the buffer's type. */
    public static void write(double[] src, int from, DataBuffer b, int at, int n) {
        if (b.dataType() == DataType.FLOAT) {
            FloatBuffer f = b.asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
            for (int i = 0; i < n; i++) f.put(at + i, (float) src[from + i]);
        } else if (b.dataType() == DataType.DOUBLE) {
            DoubleBuffer d = b.asNio().order(ByteOrder.nativeOrder()).asDoubleBuffer();
            d.put(at, src, from, n);
        } else {
            for (int i = 0; i < n; i++) b.put(at + i, src[from + i]);
        }
    }
}
