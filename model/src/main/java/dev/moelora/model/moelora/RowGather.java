package dev.moelora.model.moelora;

import java.nio.ByteBuffer;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * {@code dst[i] = src[rows[i]]} for the rows of two (rows, width) matrices, as one bulk memory copy
 * per row through java.nio views of the native buffers: the routed slots' gathers and the
 * combine's and dx's per-slot pulls. The copy is exact (bytes, not values), so it changes no
 * result; it replaces ND4J's pullRows, which allocates a native index array, looks up two TADs and
 * wakes ND4J's threads on every call and was most of a MoELoRA module's time on the decoder bench
 * (BENCHMARKS.md). It allocates only the two nio views of each call.
 */
final class RowGather {
    private RowGather() {}

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
            throw new IllegalArgumentException("row gather: the " + what + " must be a rank-2 matrix with contiguous rows, got shape "
                    + java.util.Arrays.toString(t.shape()) + " strides " + java.util.Arrays.toString(t.stride()));
        }
    }
}
