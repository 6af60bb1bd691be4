package dev.moelora.model.tiedlora;

import dev.moelora.model.adapter.Foldable;
import dev.moelora.model.nn.InputDropout;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.nn.Slab;
import dev.moelora.model.optim.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Tied-LoRA as a decorator over a frozen layer: {@code y = base(x) + s * v ⊙ B (u ⊙ A drop(x))},
 * s = alpha / r. A and B may be tensors shared with other layers' modules: this module then adds
 * its gradient into the shared gradient, so a tied tensor's gradient is the sum over the layers
 * using it. A u or v that is null is the constant 1 and costs nothing. Gradients are computed for
 * trained factors only. It never touches the base layer's weights, nor a frozen factor.
 */
final class TiedLoraLinear implements Foldable {
    /** A low-rank factor: its value, and the parameter holding it when trained (null when frozen). */
    record Factor(INDArray value, Parameter trained) {
        static Factor of(Parameter p) { return new Factor(p.value(), p); }
        static Factor frozen(INDArray value) { return new Factor(value, null); }
    }

    private final Linear base;
    private final Factor a;       // (R, dIn)
    private final Factor b;       // (dOut, R)
    private final Parameter u;    // (R), null = ones
    private final Parameter v;    // (dOut), null = ones
    private final INDArray uRow, duRow; // (1, R) views of u and its gradient
    private final INDArray vRow, dvRow; // (1, dOut) views of v and its gradient
    private final double scale;
    private final InputDropout dropout;
    private boolean training = true;

    private long capacityRows;
    private Slab h1Slab, h2Slab, h3Slab, outSlab, dh2Slab, onesSlab;
    // kept from forward for backward
    private INDArray lastX;  // (N, dIn) input after dropout
    private INDArray lastH1; // (N, R) A x
    private INDArray lastH2; // (N, R) u ⊙ h1, the same array as h1 when u is ones
    private INDArray lastH3; // (N, dOut) h2 B^T, only when v is stored

    TiedLoraLinear(Linear base, Factor a, Factor b, Parameter u, Parameter v, double scale, double dropout, long seed) {
        long r = a.value().size(0);
        if (a.value().size(1) != base.dIn() || b.value().size(0) != base.dOut() || b.value().size(1) != r
                || (u != null && u.size() != r) || (v != null && v.size() != base.dOut())) {
            throw new IllegalArgumentException(base.name() + ": factors do not fit a (" + base.dOut() + " x " + base.dIn()
                    + ") layer at rank " + r);
        }
        this.base = base;
        this.a = a;
        this.b = b;
        this.u = u;
        this.v = v;
        this.uRow = u == null ? null : u.value().reshape(1, r);
        this.duRow = u == null ? null : u.grad().reshape(1, r);
        this.vRow = v == null ? null : v.value().reshape(1, base.dOut());
        this.dvRow = v == null ? null : v.grad().reshape(1, base.dOut());
        this.scale = scale;
        this.dropout = new InputDropout(base.name() + ".tied_lora", dropout, seed);
    }

    @Override public String name() { return base.name(); }
    @Override public long dIn() { return base.dIn(); }
    @Override public long dOut() { return base.dOut(); }

    @Override public Linear base() { return base; }
    Factor a() { return a; }
    Factor b() { return b; }
    Parameter u() { return u; }
    Parameter v() { return v; }

    /** Restarts the dropout stream; the trainer does this every step so a resumed run draws the same masks. */
    void reseed(long seed) {
        dropout.reseed(seed);
    }

    void setTraining(boolean training) {
        this.training = training;
    }

    private long rank() {
        return a.value().size(0);
    }

    private void ensureCapacity(long rows) {
        if (rows <= capacityRows) return;
        var dtype = a.value().dataType();
        long r = rank();
        h1Slab = new Slab(name() + ".h1", dtype, rows * r);
        dh2Slab = new Slab(name() + ".dh2", dtype, rows * r);
        if (u != null) h2Slab = new Slab(name() + ".h2", dtype, rows * r);
        if (v != null) {
            h3Slab = new Slab(name() + ".h3", dtype, rows * dOut());
            outSlab = new Slab(name() + ".out", dtype, rows * dOut());
        }
        if (u != null || v != null) {
            onesSlab = new Slab(name() + ".ones", dtype, rows);
            onesSlab.view(rows).assign(1.0);
        }
        capacityRows = rows;
    }

    @Override
    public void forward(INDArray x, INDArray y) {
        base.forward(x, y);
        long n = x.size(0), r = rank();
        ensureCapacity(n);
        INDArray xd = dropout.forward(x, training);
        INDArray h1 = h1Slab.view(n, r);
        Nd4j.gemm(xd, a.value(), h1, false, true, 1.0, 0.0);                 // h1 = x A^T       (N, R)
        INDArray h2 = u == null ? h1 : h2Slab.view(n, r).assign(h1).muliRowVector(uRow); // h2 = u ⊙ h1 (N, R)
        if (v == null) {
            Nd4j.gemm(h2, b.value(), y, false, true, scale, 1.0);            // y += s h2 B^T    (N, dOut)
        } else {
            INDArray h3 = h3Slab.view(n, dOut());
            Nd4j.gemm(h2, b.value(), h3, false, true, 1.0, 0.0);             // h3 = h2 B^T      (N, dOut)
            y.addi(outSlab.view(n, dOut()).assign(h3).muliRowVector(vRow).muli(scale)); // y += s v ⊙ h3
            lastH3 = h3;
        }
        lastX = xd;
        lastH1 = h1;
        lastH2 = h2;
    }

    /** s diag(v) B diag(u) A: the forward's adapter term s v ⊙ B (u ⊙ A x), as a matrix. */
    @Override
    public INDArray weightDelta() {
        INDArray bv = b.value().castTo(DataType.DOUBLE).dup();                     // (dOut, R), a copy whatever the dtype
        if (u != null) bv.muliRowVector(u.value().castTo(DataType.DOUBLE).reshape(1, rank()));
        if (v != null) bv.muliColumnVector(v.value().castTo(DataType.DOUBLE).reshape(dOut(), 1));
        INDArray delta = Nd4j.create(DataType.DOUBLE, dOut(), dIn());
        Nd4j.gemm(bv, a.value().castTo(DataType.DOUBLE), delta, false, false, scale, 0.0);
        return delta;
    }

    @Override
    public void backward(INDArray dy, INDArray dx, boolean accumulate) {
        base.backward(dy, dx, accumulate);
        long n = dy.size(0), r = rank();
        // dh3 = s (dy ⊙ v) (N, dOut); with v = 1 it is s·dy, and s rides on the GEMMs' alpha instead
        INDArray dh3 = dy;
        double dh3Scale = scale;
        if (v != null) {
            dh3 = outSlab.view(n, dOut()).assign(dy).muliRowVector(vRow).muli(scale);
            dh3Scale = 1.0;
            // dv = s Σ_n dy ⊙ h3 (dOut); h3 is not needed afterwards, so it holds the product
            Nd4j.gemm(ones(n), lastH3.muli(dy), dvRow, false, false, scale, 1.0);
        }
        if (b.trained() != null) {
            Nd4j.gemm(dh3, lastH2, b.trained().grad(), true, false, dh3Scale, 1.0); // dB += dh3^T h2 (dOut, R)
        }
        INDArray dh = dh2Slab.view(n, r);
        Nd4j.gemm(dh3, b.value(), dh, false, false, dh3Scale, 0.0);               // dh2 = dh3 B (N, R)
        if (u != null) {
            // du = Σ_n dh2 ⊙ h1 (R); h1 is not needed afterwards, so it holds the product
            Nd4j.gemm(ones(n), lastH1.muli(dh), duRow, false, false, 1.0, 1.0);
            dh.muliRowVector(uRow);                                                // dh1 = dh2 ⊙ u (N, R)
        }
        if (a.trained() != null) {
            Nd4j.gemm(dh, lastX, a.trained().grad(), true, false, 1.0, 1.0);      // dA += dh1^T x (R, dIn)
        }
        dropout.backwardThroughMatmul(dh, a.value(), dx);                           // dx += (dh1 A) ⊙ dropout mask (N, dIn)
    }

    private INDArray ones(long n) {
        return onesSlab.view(1, n);
    }
}
