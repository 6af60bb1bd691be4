package dev.moelora.model.lora;

import dev.moelora.model.adapter.Foldable;
import dev.moelora.model.nn.InputDropout;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.nn.Slab;
import dev.moelora.model.optim.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * LoRA as a decorator over a frozen layer: {@code y = base(x) + s * B A drop(x)}, s = alpha / r.
 * A (r x dIn) starts Kaiming-uniform as in PEFT ({@code kaiming_uniform_(a=sqrt(5))}, i.e.
 * U(-1/sqrt(dIn), 1/sqrt(dIn))), B (dOut x r) starts at zero, so step 0 equals the base model.
 * It never touches the base layer's weights.
 */
public final class LoraLinear implements Foldable {
    private final Linear base;
    private final Parameter a; // (R, dIn)
    private final Parameter b; // (dOut, R)
    private final double scale;
    private final InputDropout dropout;
    private boolean training = true;

    private long capacityRows;
    private Slab hSlab, dhSlab;
    private INDArray lastX, lastH; // (N, dIn) input after dropout, (N, R) A x

    LoraLinear(Linear base, INDArray aInit, INDArray bInit, double scale, double dropout, long seed) {
        this.base = base;
        this.a = new Parameter(base.name() + ".lora_A", aInit);
        this.b = new Parameter(base.name() + ".lora_B", bInit);
        this.scale = scale;
        this.dropout = new InputDropout(base.name() + ".lora", dropout, seed);
    }

    @Override public String name() { return base.name(); }
    @Override public long dIn() { return base.dIn(); }
    @Override public long dOut() { return base.dOut(); }

    @Override public Linear base() { return base; }
    public Parameter a() { return a; }
    public Parameter b() { return b; }
    public double scale() { return scale; }

    /** Restarts the dropout stream; the trainer does this every step so a resumed run draws the same masks. */
    public void reseed(long seed) {
        dropout.reseed(seed);
    }

    public void setTraining(boolean training) {
        this.training = training;
    }

    private void ensureCapacity(long rows) {
        if (rows <= capacityRows) return;
        var dtype = a.value().dataType();
        long r = a.value().size(0);
        hSlab = new Slab(name() + ".h", dtype, rows * r);
        dhSlab = new Slab(name() + ".dh", dtype, rows * r);
        capacityRows = rows;
    }

    @Override
    public void forward(INDArray x, INDArray y) {
        base.forward(x, y);
        long n = x.size(0);
        ensureCapacity(n);
        INDArray xd = dropout.forward(x, training);
        INDArray h = hSlab.view(n, a.value().size(0));
        Nd4j.gemm(xd, a.value(), h, false, true, 1.0, 0.0);
        Nd4j.gemm(h, b.value(), y, false, true, scale, 1.0);
        lastX = xd;
        lastH = h;
    }

    /** s B A: the forward's adapter term x A^T B^T s is x (s B A)^T. */
    @Override
    public INDArray weightDelta() {
        INDArray delta = Nd4j.create(DataType.DOUBLE, dOut(), dIn());
        Nd4j.gemm(b.value().castTo(DataType.DOUBLE), a.value().castTo(DataType.DOUBLE), delta, false, false, scale, 0.0);
        return delta;
    }

    @Override
    public void backward(INDArray dy, INDArray dx, boolean accumulate) {
        base.backward(dy, dx, accumulate);
        long n = dy.size(0);
        INDArray dh = dhSlab.view(n, a.value().size(0));
        Nd4j.gemm(dy, lastH, b.grad(), true, false, scale, 1.0);
        Nd4j.gemm(dy, b.value(), dh, false, false, scale, 0.0);
        Nd4j.gemm(dh, lastX, a.grad(), true, false, 1.0, 1.0);
        dropout.backwardThroughMatmul(dh, a.value(), dx);
    }
}
