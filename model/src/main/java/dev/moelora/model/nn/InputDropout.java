package dev.moelora.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.random.impl.BernoulliDistribution;
import org.nd4j.linalg.api.rng.Random;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Inverted dropout on an adapter branch's input {@code drop(x) = x ⊙ m / (1 - p)}, with its mask
 * kept for backward and its buffers grown only when the batch grows. The mask stream is the
 * module's own and is restarted by {@link #reseed} every step, so a resumed run draws the same
 * masks. It never touches x itself.
 */
public final class InputDropout {
    private final String name;
    private final double p;
    private final Random rng;
    private long capacity;
    private Slab maskSlab, droppedSlab;
    private INDArray lastMask, lastDropped; // (N, dIn) m / (1 - p) and drop(x); null when the last forward kept x

    public InputDropout(String name, double p, long seed) {
        this.name = name;
        this.p = p;
        this.rng = Nd4j.getRandomFactory().getNewRandomInstance(seed);
    }

    public void reseed(long seed) {
        rng.setSeed(seed);
    }

    /** drop(x) (N, dIn): x itself when p = 0 or outside training, else a buffer of this object. */
    public INDArray forward(INDArray x, boolean training) {
        lastMask = null;
        lastDropped = null;
        if (p == 0 || !training) return x;
        long n = x.size(0), d = x.size(1);
        if (n * d > capacity) {
            capacity = n * d;
            maskSlab = new Slab(name + ".dropout", x.dataType(), capacity);
            droppedSlab = new Slab(name + ".dropped", x.dataType(), capacity);
        }
        double keep = 1.0 - p;
        lastMask = maskSlab.view(n, d);
        Nd4j.getExecutioner().exec(new BernoulliDistribution(lastMask, keep), rng);
        lastMask.divi(keep);
        lastDropped = droppedSlab.view(n, d).assign(x).muli(lastMask);
        return lastDropped;
    }

    /** dL/dx from dL/d(drop(x)) (N, dIn), in place: times the last forward's mask (unchanged when it kept x). */
    public INDArray backward(INDArray dDropped) {
        return lastMask == null ? dDropped : dDropped.muli(lastMask);
    }

    /**
     * For a branch that computed {@code drop(x) W^T}: {@code dx += (g W) ⊙ mask}, given
     * g = dL/d(drop(x) W^T). Call it after every other use of drop(x) in backward: the dropped
     * input's buffer is reused for {@code g W}.
     */
    public void backwardThroughMatmul(INDArray g, INDArray w, INDArray dx) {
        if (lastMask == null) {
            Nd4j.gemm(g, w, dx, false, false, 1.0, 1.0);
            return;
        }
        Nd4j.gemm(g, w, lastDropped, false, false, 1.0, 0.0);
        dx.addi(lastDropped.muli(lastMask));
    }
}
