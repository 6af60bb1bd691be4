package dev.moelora.model.nn;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The exact (erf) GELU that BERT uses, {@code y = x * Phi(x)}, forward and backward. Not the
 * tanh or sigmoid approximations: parity with the ONNX graph depends on it. FLOAT tensors take
 * one pass per row in float lanes when the JVM has the Vector API (erf to float resolution, see
 * {@link FloatLanes#gelu}); DOUBLE tensors, and FLOAT ones without it, ND4J's erf.
 */
public final class Gelu {
    private static final double INV_SQRT2 = 1.0 / Math.sqrt(2.0);
    private static final double INV_SQRT_2PI = 1.0 / Math.sqrt(2.0 * Math.PI);

    private Gelu() {}

    /** @param cdf (same shape) receives Phi(x), kept for backward */
    public static void forward(INDArray x, INDArray y, INDArray cdf) {
        if (lanes(x, y, cdf)) {
            HostRows xs = new HostRows(x), ys = new HostRows(y), cs = new HostRows(cdf);
            int F = xs.width();
            RowRanges.run((int) xs.rows(), F, (from, to) -> {
                float[] v = new float[F], c = new float[F];
                for (int r = from; r < to; r++) {
                    xs.read(r, v);
                    FloatLanes.gelu(v, v, c, F);
                    ys.write(r, v);
                    cs.write(r, c);
                }
            });
            return;
        }
        cdf.assign(x).muli(INV_SQRT2);
        Nd4j.exec(new Erf(cdf, cdf));
        cdf.addi(1.0).muli(0.5);
        y.assign(x).muli(cdf);
    }

    /** dx = dy * (Phi(x) + x * phi(x)). dx must not alias dy. */
    public static void backward(INDArray dy, INDArray x, INDArray cdf, INDArray dx) {
        if (lanes(dy, x, cdf, dx)) {
            HostRows dys = new HostRows(dy), xs = new HostRows(x), cs = new HostRows(cdf), dxs = new HostRows(dx);
            int F = xs.width();
            RowRanges.run((int) xs.rows(), F, (from, to) -> {
                float[] d = new float[F], v = new float[F], c = new float[F];
                for (int r = from; r < to; r++) {
                    dys.read(r, d);
                    xs.read(r, v);
                    cs.read(r, c);
                    FloatLanes.geluBackward(d, v, c, d, F);
                    dxs.write(r, d);
                }
            });
            return;
        }
        dx.assign(x).muli(x).muli(-0.5);
        Transforms.exp(dx, false);
        dx.muli(INV_SQRT_2PI).muli(x).addi(cdf).muli(dy);
    }

    /** Whether every tensor is FLOAT and the lanes are on: otherwise ND4J's ops, and no host views are made. */
    private static boolean lanes(INDArray... ts) {
        if (!VectorApi.PRESENT) return false;
        for (INDArray t : ts) if (t.dataType() != DataType.FLOAT) return false;
        return true;
    }
}
