package dev.moelora.model.nn;

import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Whole rows of a (rows, width) FLOAT or DOUBLE matrix read into and written from Java arrays in
 * bulk, through one java.nio view of its native buffer: for the loops that fuse a chain of
 * element-wise ops into one pass over memory (MoELoRA's gathers and sums, the decoder's norms,
 * activations, softmax and loss) instead of an ND4J call and a pass over the buffer per op.
 * Float arrays of a FLOAT matrix keep the loops in float with Java's IEEE semantics (exactly the
 * products and sums of the ND4J element-wise ops they replaced); double arrays work for both
 * types (a FLOAT matrix's values widened on the way in and rounded to float on the way out), for
 * loops that compute in double whatever the model's type. It allocates only the nio view.
 */
public final class HostRows {
    private final FloatBuffer floats;    // one of the two, by dtype
    private final DoubleBuffer doubles;
    private final long base, stride, rows;
    private final int width;

    public HostRows(INDArray t) {
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
    public void read(int r, float[] dst) {
        floats().get(at(r), dst, 0, width);
    }

    /** Row r of a FLOAT matrix = src[0, width). */
    public void write(int r, float[] src) {
        floats().put(at(r), src, 0, width);
    }

    /** dst[0, width) = row r, widened to double when the matrix is FLOAT. */
    public void read(int r, double[] dst) {
        int at = at(r);
        if (doubles != null) {
            doubles.get(at, dst, 0, width);
        } else {
            for (int i = 0; i < width; i++) dst[i] = floats.get(at + i);
        }
    }

    /** Row r = src[0, width), rounded to float when the matrix is FLOAT. */
    public void write(int r, double[] src) {
        int at = at(r);
        if (doubles != null) {
            doubles.put(at, src, 0, width);
        } else {
            for (int i = 0; i < width; i++) floats.put(at + i, (float) src[i]);
        }
    }

    /**
     * The n values of a frozen weight vector ((1, n) or (n)), in double, for a kernel to read once
     * per call; {@code what} names it in the error when its length is not n.
     */
    public static double[] vector(INDArray w, int n, String what) {
        if (w.length() != n) throw new IllegalArgumentException(what + " of " + n + " channels: weight of " + w.length());
        double[] v = new double[n];
        new HostRows(w.reshape(1, n)).read(0, v);
        return v;
    }

    /** Element c of row r, widened to double. */
    public double get(int r, int c) {
        column(c);
        return doubles != null ? doubles.get(at(r) + c) : floats.get(at(r) + c);
    }

    /** Element c of row r = v, rounded to the matrix's type. */
    public void set(int r, int c, double v) {
        column(c);
        if (doubles != null) doubles.put(at(r) + c, v);
        else floats.put(at(r) + c, (float) v);
    }

    /**
     * Whether a kernel may take its {@link FloatLanes} path on this matrix: it is FLOAT and the
     * JVM has the Vector API.
     */
    public boolean floatLanes() {
        return floats != null && VectorApi.PRESENT;
    }

    public long rows() {
        return rows;
    }

    public int width() {
        return width;
    }

    private FloatBuffer floats() {
        if (floats == null) throw new IllegalStateException("host rows: float rows of a DOUBLE matrix");
        return floats;
    }

    private void column(int c) {
        if (c < 0 || c >= width) throw new IndexOutOfBoundsException("host rows: column " + c + " of " + width);
    }

    private int at(int r) {
        if (r < 0 || r >= rows) throw new IndexOutOfBoundsException("host rows: row " + r + " of " + rows);
        return (int) (base + r * stride);
    }
}
