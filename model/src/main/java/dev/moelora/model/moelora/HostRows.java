package dev.moelora.model.moelora;

import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Whole rows of a (rows, width) FLOAT or DOUBLE matrix read into and written from Java arrays of
 * its own type in bulk, through one java.nio view of its native buffer: for the dispatch's loops
 * that fuse a gather, a product and a sum per row into one pass over memory instead of an ND4J
 * call (and a pass over a 2 MB buffer) per step. The arrays are of the matrix's type, so the loops
 * compute in that type with Java's IEEE semantics (no fused multiply-add): exactly the products and
 * sums of the ND4J element-wise ops they replace. It allocates only the nio view.
 */
final class HostRows {
    private final FloatBuffer floats;    // one of the two, by dtype
    private final DoubleBuffer doubles;
    private final long base, stride, rows;
    private final int width;

    HostRows(INDArray t) {
        if (t.rank() != 2 || (t.size(1) > 1 && t.stride(1) != 1)) {
            throw new IllegalArgumentException("host rows: a rank-2 matrix with contiguous rows is expected, got shape "
                    + java.util.Arrays.toString(t.shape()) + " strides " + java.util.Arrays.toString(t.stride()));
        }
        this.rows = t.size(0);
        this.width = (int) t.size(1);
        this.base = t.offset();
        this.stride = t.stride(0);
        var nio = t.data().asNio().order(ByteOrder.nativeOrder());
        if (t.dataType() == DataType.FLOAT) {
            this.floats = nio.asFloatBuffer();
            this.doubles = null;
        } else if (t.dataType() == DataType.DOUBLE) {
            this.floats = null;
            this.doubles = nio.asDoubleBuffer();
        } else {
            throw new IllegalArgumentException("host rows: FLOAT or DOUBLE expected, got " + t.dataType());
        }
    }

    /** dst[0, width) = row r of a FLOAT matrix. */
    void read(int r, float[] dst) {
        floats().get(at(r), dst, 0, width);
    }

    /** Row r of a FLOAT matrix = src[0, width). */
    void write(int r, float[] src) {
        floats().put(at(r), src, 0, width);
    }

    /** dst[0, width) = row r of a DOUBLE matrix. */
    void read(int r, double[] dst) {
        doubles().get(at(r), dst, 0, width);
    }

    /** Row r of a DOUBLE matrix = src[0, width). */
    void write(int r, double[] src) {
        doubles().put(at(r), src, 0, width);
    }

    private FloatBuffer floats() {
        if (floats == null) throw new IllegalStateException("host rows: float rows of a DOUBLE matrix");
        return floats;
    }

    private DoubleBuffer doubles() {
        if (doubles == null) throw new IllegalStateException("host rows: double rows of a FLOAT matrix");
        return doubles;
    }

    private int at(int r) {
        if (r < 0 || r >= rows) throw new IndexOutOfBoundsException("host rows: row " + r + " of " + rows);
        return (int) (base + r * stride);
    }
}
