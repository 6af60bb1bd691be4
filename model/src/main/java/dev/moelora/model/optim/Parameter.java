package dev.moelora.model.optim;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A trainable tensor and its gradient accumulator, allocated once and updated in place. It also
 * holds java.nio views of both tensors' native memory, made once here: the optimizer's passes
 * (zeroing, clipping, AdamW) are Java loops over these views, because an ND4J call allocates a few
 * KB of op objects on the Java heap and so does making a view, and a warm step must allocate
 * nothing.
 *
 * <p>The value must be FLOAT or DOUBLE and laid out as one c-order run of memory; a view at an
 * offset into a larger buffer (a row block, a Slab view) is fine. Any other layout (transposed,
 * column slice, f-order) fails here: the loops walk element i of the value, the gradient and the
 * moments at the same place in their runs, and for such a view that would be another element.
 */
public final class Parameter {
    private final String name;
    private final INDArray value;
    private final INDArray grad;
    private final Buffer valueView, gradView; // FloatBuffer or DoubleBuffer as the value's dtype, element 0 = the tensor's first element

    public Parameter(String name, INDArray value) {
        this.name = name;
        this.value = value;
        this.grad = Nd4j.zeros(value.dataType(), value.shape());
        this.valueView = hostView(value, "parameter '" + name + "'");
        this.gradView = hostView(grad, "parameter '" + name + "' gradient");
    }

    public String name() { return name; }
    public INDArray value() { return value; }
    public INDArray grad() { return grad; }
    public long size() { return value.length(); }

    public void zeroGrad() {
        if (gradView instanceof FloatBuffer g) {
            for (int i = 0, n = g.limit(); i < n; i++) g.put(i, 0f);
        } else {
            DoubleBuffer g = (DoubleBuffer) gradView;
            for (int i = 0, n = g.limit(); i < n; i++) g.put(i, 0.0);
        }
    }

    /** grad *= factor, in the gradient's precision (the factor rounded to it first, as an ND4J scalar op does). */
    public void scaleGrad(double factor) {
        if (gradView instanceof FloatBuffer g) {
            float f = (float) factor;
            for (int i = 0, n = g.limit(); i < n; i++) g.put(i, g.get(i) * f);
        } else {
            DoubleBuffer g = (DoubleBuffer) gradView;
            for (int i = 0, n = g.limit(); i < n; i++) g.put(i, g.get(i) * factor);
        }
    }

    /** The gradient's sum of squares, accumulated in double in element order. */
    double gradSquares() {
        double sq = 0;
        if (gradView instanceof FloatBuffer g) {
            for (int i = 0, n = g.limit(); i < n; i++) {
                double x = g.get(i);
                sq += x * x;
            }
        } else {
            DoubleBuffer g = (DoubleBuffer) gradView;
            for (int i = 0, n = g.limit(); i < n; i++) {
                double x = g.get(i);
                sq += x * x;
            }
        }
        return sq;
    }

    Buffer valueView() { return valueView; }
    Buffer gradView() { return gradView; }

    /**
     * A FloatBuffer (FLOAT) or DoubleBuffer (DOUBLE) over exactly the elements of {@code a}, in
     * c order; {@code what} names the tensor in the error for a dtype or layout it cannot view.
     */
    static Buffer hostView(INDArray a, String what) {
        DataType dtype = a.dataType();
        if (dtype != DataType.FLOAT && dtype != DataType.DOUBLE) {
            throw new IllegalArgumentException(what + " is " + dtype + ": the optimizer handles FLOAT and DOUBLE tensors");
        }
        long[] shape = a.shape(), stride = a.stride();
        long expected = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && stride[d] != expected) {
                throw new IllegalArgumentException(what + " has shape " + Arrays.toString(shape) + " with strides " + Arrays.toString(stride)
                        + " (order '" + a.ordering() + "'): the optimizer needs a contiguous c-order tensor, strides "
                        + Arrays.toString(Nd4j.getStrides(shape, 'c')) + " (dup('c') it first)");
            }
            expected *= shape[d];
        }
        long length = a.length(), offset = a.offset();
        if (offset + length > Integer.MAX_VALUE / dtype.width()) {
            throw new IllegalArgumentException(what + " ends at element " + (offset + length) + ", past what one java.nio view addresses");
        }
        // asNio() spans the whole underlying buffer from its start; a view's offset counts elements from there
        int width = dtype.width();
        ByteBuffer run = a.data().asNio().slice((int) offset * width, (int) length * width).order(ByteOrder.nativeOrder());
        return dtype == DataType.FLOAT ? run.asFloatBuffer() : run.asDoubleBuffer();
    }
}
