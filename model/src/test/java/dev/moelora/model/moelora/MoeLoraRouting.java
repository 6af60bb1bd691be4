package dev.moelora.model.moelora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What MoELoRA's modules routed, for gradient checks of whole models outside this package. Top-k
 * routing is piecewise: a finite-difference check measures the same function as the analytic
 * gradient only while no step changes which experts a token goes to, so such a check records the
 * routing of its analytic forward and asserts it after every perturbed one.
 */
public final class MoeLoraRouting {
    private MoeLoraRouting() {}

    /** Every module's (N, K) experts of the last forward, in forward order. */
    public static List<int[]> of(MoeLoraAdapters adapters) {
        return adapters.modules().stream().map(MoeLoraLinear::routing).toList();
    }

    public static void assertUnchanged(List<int[]> expected, MoeLoraAdapters adapters) {
        List<int[]> now = of(adapters);
        for (int i = 0; i < expected.size(); i++) {
            assertArrayEquals(expected.get(i), now.get(i), adapters.modules().get(i).name() + ": a finite-difference step changed the routing");
        }
    }

    /** How many distinct experts the module routed to in its last forward. */
    public static int distinctExperts(int[] routing) {
        return (int) java.util.Arrays.stream(routing).distinct().count();
    }

    /**
     * Gates U(-gateScale, gateScale), so that top-k margins stand far above a finite-difference
     * step, and every B U(-1, 1) instead of 0, so that experts contribute and A has a gradient.
     */
    public static void randomise(MoeLoraAdapters adapters, SplittableRandom random, double gateScale) {
        for (MoeLoraLinear m : adapters.modules()) {
            fill(m.gate().value(), random, gateScale);
            for (int e = 0; e < m.experts(); e++) fill(m.b(e).value(), random, 1);
        }
    }

    private static void fill(INDArray t, SplittableRandom random, double scale) {
        for (long i = 0; i < t.length(); i++) t.putScalar(i, random.nextDouble(-scale, scale));
    }
}
