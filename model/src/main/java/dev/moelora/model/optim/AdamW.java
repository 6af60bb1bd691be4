package dev.moelora.model.optim;

import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * AdamW with decoupled weight decay and bias correction, exactly as PyTorch's
 * {@code torch.optim.AdamW} (non-amsgrad) updates:
 * {@code p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)}.
 * Moments and scratch are allocated once per parameter; a step allocates no tensors.
 */
public final class AdamW {
    private final List<Parameter> params;
    private final double beta1, beta2, eps, weightDecay;
    private final INDArray[] m, v, scratch;
    private long step;

    public AdamW(List<Parameter> params, double beta1, double beta2, double eps, double weightDecay) {
        this.params = List.copyOf(params);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        int n = params.size();
        m = new INDArray[n];
        v = new INDArray[n];
        scratch = new INDArray[n];
        for (int i = 0; i < n; i++) {
            INDArray p = params.get(i).value();
            m[i] = Nd4j.zeros(p.dataType(), p.shape());
            v[i] = Nd4j.zeros(p.dataType(), p.shape());
            scratch[i] = Nd4j.zeros(p.dataType(), p.shape());
        }
    }

    public static AdamW withDefaults(List<Parameter> params, double weightDecay) {
        return new AdamW(params, 0.9, 0.999, 1e-8, weightDecay);
    }

    /** Applies one update with learning rate lr from the accumulated gradients; does not zero them. */
    public void step(double lr) {
        step++;
        double bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
        for (int i = 0; i < params.size(); i++) {
            INDArray p = params.get(i).value(), g = params.get(i).grad();
            if (weightDecay != 0) p.muli(1 - lr * weightDecay);
            m[i].muli(beta1).addi(g.mul(1 - beta1, scratch[i]));
            v[i].muli(beta2).addi(scratch[i].assign(g).muli(g).muli(1 - beta2));
            Transforms.sqrt(scratch[i].assign(v[i]), false).divi(Math.sqrt(bc2)).addi(eps).rdivi(m[i]);
            p.subi(scratch[i].muli(lr / bc1));
        }
    }

    public long steps() { return step; }

    /** Optimizer state for checkpoints: first and second moments, named after their parameters. */
    public List<Moment> moments() {
        List<Moment> out = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) out.add(new Moment(params.get(i).name(), m[i], v[i]));
        return out;
    }

    /** Restores state saved by {@link #moments()} and the step count. */
    public void restore(long steps, java.util.Map<String, INDArray> firstMoments, java.util.Map<String, INDArray> secondMoments) {
        for (int i = 0; i < params.size(); i++) {
            String name = params.get(i).name();
            INDArray a = firstMoments.get(name), b = secondMoments.get(name);
            if (a == null || b == null) throw new IllegalArgumentException("optimizer state has no moments for '" + name + "'");
            m[i].assign(a);
            v[i].assign(b);
        }
        this.step = steps;
    }

    public record Moment(String parameter, INDArray first, INDArray second) {}

    /**
     * Scales all gradients so their global L2 norm is at most maxNorm (as
     * {@code torch.nn.utils.clip_grad_norm_}, with its 1e-6 guard); returns the norm before clipping.
     */
    public static double clipGlobalNorm(List<Parameter> params, double maxNorm) {
        double[] norms = new double[params.size()];
        for (int i = 0; i < norms.length; i++) norms[i] = norm(params.get(i));
        double norm = globalNorm(norms);
        double factor = clipFactor(norm, maxNorm);
        if (factor < 1) {
            for (Parameter p : params) p.grad().muli(factor);
        }
        return norm;
    }

    /** One parameter's gradient L2 norm: the per-tensor term of the global norm, wherever the tensor lives. */
    public static double norm(Parameter p) {
        return p.grad().norm2Number().doubleValue();
    }

    /** sqrt(sum of squares) of per-tensor norms, summed in the given order (the parameters' order). */
    public static double globalNorm(double[] norms) {
        double sq = 0;
        for (double n : norms) sq += n * n;
        return Math.sqrt(sq);
    }

    /** The factor clipping multiplies every gradient by: below 1 only when maxNorm > 0 and the norm exceeds it. */
    public static double clipFactor(double norm, double maxNorm) {
        double factor = maxNorm / (norm + 1e-6);
        return maxNorm > 0 && factor < 1 ? factor : 1;
    }
}
