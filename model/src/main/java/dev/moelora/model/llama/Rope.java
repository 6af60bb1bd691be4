package dev.moelora.model.llama;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Rotary position embedding in Hugging Face's {@code rotate_half} layout, forward and backward side
 * by side. For a head vector x of width D at position p, with inv_freq[i] = theta^(-2i/D) and
 * angle a_i = p * inv_freq[i] (i < D/2):
 * {@code y[i] = x[i] cos a_i - x[i + D/2] sin a_i}, {@code y[i + D/2] = x[i + D/2] cos a_i + x[i] sin a_i}.
 * Backward is the rotation by -a. Angles are computed in double (Hugging Face computes them in
 * float32, which differs by ~1e-7 relative at long positions).
 *
 * <p>The tables cover positions [0, P) and are built once; a call never allocates a tensor.
 */
public final class Rope {
    private final int headDim;
    private final INDArray cos; // (P, D): cos a_(i mod D/2)
    private final INDArray sin; // (P, D): -sin a_i in the first half, +sin a_i in the second (rotate_half's sign)

    public Rope(int headDim, double theta, int positions, DataType dtype) {
        int D = headDim, half = D / 2;
        this.headDim = D;
        double[] c = new double[positions * D], s = new double[positions * D];
        for (int p = 0; p < positions; p++) {
            for (int i = 0; i < half; i++) {
                double a = p / Math.pow(theta, 2.0 * i / D);
                c[p * D + i] = c[p * D + half + i] = Math.cos(a);
                s[p * D + i] = -Math.sin(a);
                s[p * D + half + i] = Math.sin(a);
            }
        }
        this.cos = Nd4j.create(c, new long[] {positions, D}, DataType.DOUBLE).castTo(dtype);
        this.sin = Nd4j.create(s, new long[] {positions, D}, DataType.DOUBLE).castTo(dtype);
    }

    /** How many positions the tables cover. */
    public long positions() {
        return cos.size(0);
    }

    /**
     * Rotates x in place: row b * T + t holds the heads of sequence b at position offset + t.
     *
     * @param x       (B*T, heads*D)
     * @param scratch (B*T, heads*D)
     */
    public void forward(INDArray x, int B, int T, int offset, INDArray scratch) {
        INDArray x4 = x4(x, B, T), s4 = x4(scratch, B, T);
        scaleAndSwap(x4, s4, T, offset);
        x4.addi(s4);
    }

    /** dx <- dx rotated by the negative angles: the transpose of forward. */
    public void backward(INDArray dx, int B, int T, int offset, INDArray scratch) {
        INDArray x4 = x4(dx, B, T), s4 = x4(scratch, B, T);
        scaleAndSwap(x4, s4, T, offset);
        x4.subi(s4);
    }

    /** x4 <- x4 * cos, s4 <- swap_halves(x4) * sin, both (B, T, heads, D). */
    private void scaleAndSwap(INDArray x4, INDArray s4, int T, int offset) {
        if (offset + T > positions()) {
            throw new IllegalArgumentException("positions up to " + (offset + T) + " exceed the RoPE tables of " + positions());
        }
        int half = headDim / 2;
        INDArray cosRows = cos.get(NDArrayIndex.interval(offset, offset + T), NDArrayIndex.all());
        INDArray sinRows = sin.get(NDArrayIndex.interval(offset, offset + T), NDArrayIndex.all());
        lastAxis(s4, 0, half).assign(lastAxis(x4, half, headDim));
        lastAxis(s4, half, headDim).assign(lastAxis(x4, 0, half));
        Nd4j.exec(new BroadcastMulOp(s4, sinRows, s4, 1, 3));
        Nd4j.exec(new BroadcastMulOp(x4, cosRows, x4, 1, 3));
    }

    private static INDArray lastAxis(INDArray a, int from, int to) {
        return a.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(from, to));
    }

    /** (B*T, heads*D) viewed as (B, T, heads, D). */
    private INDArray x4(INDArray x, int B, int T) {
        return x.reshape('c', B, T, x.size(1) / headDim, headDim);
    }
}
