package dev.moelora.model.moelora;

import java.nio.ByteBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Rows of (rows, width) matrices with contiguous rows, as MoELoRA's slot layout uses them: a range
 * of rows as a view, built directly on the buffer (an ND4J {@code get(interval, all)} costs several
 * KB of Java objects per call), and {@code dst[i] = src[rows[i]]} as one bulk memory copy per row
 * through java.nio views of the native buffers, exact (bytes, not values), instead of ND4J's
 * pullRows, which allocates a native index array and looks up two TADs on every call.
 */
final class Rows {
    private Rows() {}

    /** Rows [from, from + count) of t (rows, width), a view sharing t's buffer. */
    static INDArray range(INDArray t, long from, long count) {
        check(t, "matrix");
        return Nd4j.create(t.data(), new long[] {count, t.size(1)}, new long[] {t.stride(0), t.stride(1)},
                t.offset() + from * t.stride(0), 'c', t.dataType());
    }

    /**
     * Copies row {@code rows[i]} of {@code src} into row i of {@code dst}, for i in [0, rows.length).
     * Both must be rank 2, of one dtype and width, with contiguous rows (element stride 1).
     */
    static void gather(INDArray src, int[] rows, INDArray dst) {
        check(src, "source");
        check(dst, "destination");
        if (src.dataType() != dst.dataType() || src.size(1) != dst.size(1)) {
            throw new IllegalArgumentException("row gather from " + src.dataType() + " " + java.util.Arrays.toString(src.shape())
                    + " into " + dst.dataType() + " " + java.util.Arrays.toString(dst.shape()) + ": dtype and width must match");
        }
        if (rows.length > dst.size(0)) {
            throw new IllegalArgumentException("row gather of " + rows.length + " rows into " + dst.size(0));
        }
        long srcRows = src.size(0);
        int bytes = src.dataType().width();
        int rowBytes = (int) src.size(1) * bytes;
        long srcBase = src.offset() * bytes, srcStride = src.stride(0) * bytes;
        long dstBase = dst.offset() * bytes, dstStride = dst.stride(0) * bytes;
        ByteBuffer s = src.data().asNio(), d = dst.data().asNio();
        for (int i = 0; i < rows.length; i++) {
            int r = rows[i];
            if (r < 0 || r >= srcRows) throw new IndexOutOfBoundsException("row gather: row " + r + " of a source of " + srcRows + " rows");
            d.put((int) (dstBase + i * dstStride), s, (int) (srcBase + r * srcStride), rowBytes);
        }
    }

    private static void check(INDArray t, String what) {
        if (t.rank() != 2 || (t.size(1) > 1 && t.stride(1) != 1)) {
            throw new IllegalArgumentException("rows: the " + what + " must be a rank-2 matrix with contiguous rows, got shape "
                    + java.util.Arrays.toString(t.shape()) + " strides " + java.util.Arrays.toString(t.stride()));
        }
    }
}
