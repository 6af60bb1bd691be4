package dev.moelora.model.nn;

import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Parameter initialisation from a caller's seeded stream, so that weights never depend on ND4J's
 * global random generator or on how many other tensors were created before.
 */
public final class Init {
    private Init() {}

    /** N(0, std^2) entries (Box-Muller). */
    public static INDArray normal(SplittableRandom random, DataType dtype, double std, long... shape) {
        INDArray a = Nd4j.create(dtype, shape);
        for (long i = 0; i < a.length(); i++) {
            double u = 1.0 - random.nextDouble(), v = random.nextDouble();
            a.putScalar(i, std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
        }
        return a;
    }

    /** U(-bound, bound) entries. */
    public static INDArray uniform(SplittableRandom random, DataType dtype, double bound, long... shape) {
        INDArray a = Nd4j.create(dtype, shape);
        for (long i = 0; i < a.length(); i++) a.putScalar(i, random.nextDouble(-bound, bound));
        return a;
    }
}
