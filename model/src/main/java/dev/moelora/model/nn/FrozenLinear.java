package dev.moelora.model.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** A frozen base layer {@code y = x W^T + b} (or {@code x W^T} without bias); never changes its weights. */
public final class FrozenLinear implements Linear {
    private final String name;
    private final INDArray weight; // (dOut, dIn), PyTorch's nn.Linear layout
    private final INDArray bias;   // (1, dOut), null for a layer without bias

    /** A layer without bias, as LLaMA's projections. */
    public FrozenLinear(String name, INDArray weight) {
        if (weight.rank() != 2) {
            throw new IllegalArgumentException(name + ": weight " + java.util.Arrays.toString(weight.shape()) + " is not a matrix");
        }
        this.name = name;
        this.weight = weight;
        this.bias = null;
    }

    public FrozenLinear(String name, INDArray weight, INDArray bias) {
        if (weight.rank() != 2 || bias.length() != weight.size(0)) {
            throw new IllegalArgumentException(name + ": weight " + java.util.Arrays.toString(weight.shape())
                    + " and bias " + java.util.Arrays.toString(bias.shape()) + " do not make a linear layer");
        }
        this.name = name;
        this.weight = weight;
        this.bias = bias.reshape(1, bias.length());
    }

    @Override public String name() { return name; }
    @Override public long dIn() { return weight.size(1); }
    @Override public long dOut() { return weight.size(0); }

    public INDArray weight() { return weight; }
    /** (1, dOut), or null for a layer without bias. */
    public INDArray bias() { return bias; }

    @Override
    public void forward(INDArray x, INDArray y) {
        Nd4j.gemm(x, weight, y, false, true, 1.0, 0.0);
        if (bias != null) y.addiRowVector(bias);
    }

    @Override
    public void backward(INDArray dy, INDArray dx, boolean accumulate) {
        Nd4j.gemm(dy, weight, dx, false, false, 1.0, accumulate ? 1.0 : 0.0);
    }
}
