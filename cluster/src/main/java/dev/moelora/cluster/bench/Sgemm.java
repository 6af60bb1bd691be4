package dev.moelora.cluster.bench;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Measured, not asserted: ND4J's float32 GEMM rate ({@code Nd4j.gemm}, OpenBLAS on the CPU backend)
 * on one shape, in the calling process, so that a training step's FLOP rate can be read as a
 * fraction of what the same process gets from its BLAS. Allocates its three matrices per call.
 */
public final class Sgemm {
    private Sgemm() {}

    /** GFLOP/s of an (m, k) x (k, n) float product, median of repetitions lasting about 0.2 s after two warm-up products. */
    public static double rate(int m, int k, int n) {
        INDArray a = Nd4j.rand(DataType.FLOAT, m, k), b = Nd4j.rand(DataType.FLOAT, k, n), c = Nd4j.create(DataType.FLOAT, m, n);
        double flops = 2.0 * m * k * n;
        Nd4j.gemm(a, b, c, false, false, 1, 0);
        long s0 = System.nanoTime();
        Nd4j.gemm(a, b, c, false, false, 1, 0);
        double once = Math.max(1e-6, (System.nanoTime() - s0) / 1e9);
        int reps = (int) Math.max(5, Math.min(200, 0.2 / once));
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long s = System.nanoTime();
            Nd4j.gemm(a, b, c, false, false, 1, 0);
            t[i] = (System.nanoTime() - s) / 1e9;
        }
        return flops / Machine.median(t) / 1e9;
    }

    /** GFLOP/s of an (n, n) x (n, n) float product. */
    public static double square(int n) {
        return rate(n, n, n);
    }
}
