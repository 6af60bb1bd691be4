package dev.moelora.model.nn;

import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A tensor buffer allocated once at its largest size; every step takes a view of its leading
 * elements, shaped for that step's batch. This is how the step loop reuses activation and
 * gradient memory instead of allocating it. A Slab never grows by itself: asking for more than
 * its capacity is a bug in the caller's sizing and fails loudly.
 */
public final class Slab {
    private final DataBuffer data;
    private final DataType dtype;
    private final long capacity;
    private final String name;

    public Slab(String name, DataType dtype, long capacity) {
        this.name = name;
        this.dtype = dtype;
        this.capacity = capacity;
        this.data = Nd4j.createBuffer(dtype, Math.max(1, capacity), true);
    }

    /** A c-order view of the first product(shape) elements. Its contents are whatever was left there. */
    public INDArray view(long... shape) {
        long n = 1;
        for (long d : shape) n *= d;
        if (n > capacity) {
            throw new IllegalStateException("buffer '" + name + "' holds " + capacity
                    + " elements, asked for " + n + " " + java.util.Arrays.toString(shape));
        }
        return Nd4j.create(data, shape, Nd4j.getStrides(shape, 'c'), 0, 'c', dtype);
    }

    public long capacity() {
        return capacity;
    }
}
