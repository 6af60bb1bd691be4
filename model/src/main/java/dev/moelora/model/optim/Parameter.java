package dev.moelora.model.optim;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** A trainable tensor and its gradient accumulator, allocated once and updated in place. */
public final class Parameter {
    private final String name;
    private final INDArray value;
    private final INDArray grad;

    public Parameter(String name, INDArray value) {
        this.name = name;
        this.value = value;
        this.grad = Nd4j.zeros(value.dataType(), value.shape());
    }

    public String name() { return name; }
    public INDArray value() { return value; }
    public INDArray grad() { return grad; }
    public long size() { return value.length(); }

    public void zeroGrad() {
        grad.assign(0.0);
    }
}
