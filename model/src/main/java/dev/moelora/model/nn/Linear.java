package dev.moelora.model.nn;

/**
 * A linear layer of the trunk as the model sees it: the frozen base layer, or an adapter
 * decorating it. The model only calls forward and backward; what is trained is the adapter's
 * business.
 */
public interface Linear {
    /** The module's name, as adapters' target patterns match it, e.g. {@code encoder.layer.0.attention.self.query}. */
    String name();

    long dIn();

    long dOut();

    /** y = f(x): x (N, dIn), y (N, dOut), y overwritten. An adapter may keep x for backward. */
    void forward(org.nd4j.linalg.api.ndarray.INDArray x, org.nd4j.linalg.api.ndarray.INDArray y);

    /**
     * Given dL/dy for the last forward: writes (or with {@code accumulate} adds) dL/dx into dx,
     * and accumulates gradients of whatever parameters are trained.
     */
    void backward(org.nd4j.linalg.api.ndarray.INDArray dy, org.nd4j.linalg.api.ndarray.INDArray dx, boolean accumulate);
}
