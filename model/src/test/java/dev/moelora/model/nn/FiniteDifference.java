package dev.moelora.model.nn;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Central finite differences in double precision, the check every backward in this project passes. */
public final class FiniteDifference {
    public static final double STEP = 1e-6;
    public static final double TOLERANCE = 1e-5;

    private FiniteDifference() {}

    public static INDArray random(SplittableRandom random, long... shape) {
        INDArray a = Nd4j.create(DataType.DOUBLE, shape);
        for (long i = 0; i < a.length(); i++) a.putScalar(i, random.nextDouble(-1, 1));
        return a;
    }

    /**
     * Asserts that {@code analytic} equals d loss / d x, where loss is re-evaluated with each entry
     * of {@code x} nudged by +-STEP in place. The relative error is
     * |a - n| / max(1e-3, |a| + |n|) so that near-zero gradients are compared absolutely.
     */
    public static void check(String what, INDArray x, INDArray analytic, DoubleSupplier loss) {
        long[] all = new long[(int) x.length()];
        for (int i = 0; i < all.length; i++) all[i] = i;
        check(what, x, analytic, loss, all);
    }

    /**
     * {@link #check} on {@code samples} entries of {@code x} (all of them when it has no more),
     * drawn without replacement from a stream seeded by {@code what}: the same entries every run.
     * For models whose forward is too slow to nudge every entry of every tensor.
     */
    public static void check(String what, INDArray x, INDArray analytic, DoubleSupplier loss, int samples) {
        int n = (int) x.length();
        long[] order = new long[n];
        for (int i = 0; i < n; i++) order[i] = i;
        SplittableRandom random = new SplittableRandom(what.hashCode());
        int take = Math.min(samples, n);
        for (int i = 0; i < take; i++) {
            int j = i + random.nextInt(n - i);
            long t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        check(what, x, analytic, loss, java.util.Arrays.copyOf(order, take));
    }

    private static void check(String what, INDArray x, INDArray analytic, DoubleSupplier loss, long[] entries) {
        assertTrue(x.dataType() == DataType.DOUBLE, "gradient checks run in double");
        double worst = 0;
        long worstAt = -1;
        for (long i : entries) {
            double saved = x.getDouble(i);
            x.putScalar(i, saved + STEP);
            double up = loss.getAsDouble();
            x.putScalar(i, saved - STEP);
            double down = loss.getAsDouble();
            x.putScalar(i, saved);
            double numeric = (up - down) / (2 * STEP);
            double a = analytic.getDouble(i);
            double err = Math.abs(a - numeric) / Math.max(1e-3, Math.abs(a) + Math.abs(numeric));
            if (err > worst) {
                worst = err;
                worstAt = i;
            }
        }
        final double w = worst;
        final long at = worstAt;
        assertTrue(worst < TOLERANCE, () -> what + ": relative error " + w + " at element " + at
                + " (analytic " + analytic.getDouble(at) + ")");
    }

    /** sum(y * r): a scalar loss whose gradient wrt y is r. */
    public static double dot(INDArray y, INDArray r) {
        return y.mul(r).sumNumber().doubleValue();
    }
}
