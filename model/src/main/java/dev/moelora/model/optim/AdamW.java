package dev.moelora.model.optim;

import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * AdamW with decoupled weight decay and bias correction, exactly as PyTorch's
 * {@code torch.optim.AdamW} (non-amsgrad) updates:
 * {@code p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)},
 * together with the step's other passes over the gradients: zeroing and global-norm clipping.
 *
 * <p>Each pass is one Java loop per tensor over the java.nio views {@link Parameter} made once,
 * and over views of the moments made here once: no ND4J call and no Java allocation per step.
 * The update computes in the parameter's precision, one rounding per operation in the order the
 * formula above reads (the scalars rounded to that precision first): that is the arithmetic of
 * torch's own fp32 update and of the ND4J ops this class used to call, so a FLOAT run's updates
 * keep their bits; computing in double would round differently from both. Norms are the
 * exception: squares are summed in double, whatever the dtype, so that a long float tensor's norm
 * does not lose its small terms.
 */
public final class AdamW {
    private final Parameter[] params;
    private final double beta1, beta2, eps, weightDecay;
    private final INDArray[] m, v;         // each (shape of its parameter), the parameter's dtype
    private final Buffer[] mView, vView;   // host views of m and v
    private final double[] norms;          // per-parameter gradient norms of the last clipGradients
    private long step;

    public AdamW(List<Parameter> params, double beta1, double beta2, double eps, double weightDecay) {
        this.params = params.toArray(new Parameter[0]);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        int n = this.params.length;
        m = new INDArray[n];
        v = new INDArray[n];
        mView = new Buffer[n];
        vView = new Buffer[n];
        norms = new double[n];
        for (int i = 0; i < n; i++) {
            INDArray p = this.params[i].value();
            m[i] = Nd4j.zeros(p.dataType(), p.shape());
            v[i] = Nd4j.zeros(p.dataType(), p.shape());
            mView[i] = Parameter.hostView(m[i], "first moment of '" + this.params[i].name() + "'");
            vView[i] = Parameter.hostView(v[i], "second moment of '" + this.params[i].name() + "'");
        }
    }

    public static AdamW withDefaults(List<Parameter> params, double weightDecay) {
        return new AdamW(params, 0.9, 0.999, 1e-8, weightDecay);
    }

    /** Applies one update with learning rate lr from the accumulated gradients; does not zero them. */
    public void step(double lr) {
        step++;
        double bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
        double decay = 1 - lr * weightDecay, rootBc2 = Math.sqrt(bc2), stepSize = lr / bc1;
        boolean decays = weightDecay != 0;
        for (int i = 0; i < params.length; i++) {
            Buffer p = params[i].valueView(), g = params[i].gradView();
            if (p instanceof FloatBuffer pf) {
                update(pf, (FloatBuffer) g, (FloatBuffer) mView[i], (FloatBuffer) vView[i], decays, (float) decay,
                        (float) beta1, (float) (1 - beta1), (float) beta2, (float) (1 - beta2), (float) rootBc2, (float) eps, (float) stepSize);
            } else {
                update((DoubleBuffer) p, (DoubleBuffer) g, (DoubleBuffer) mView[i], (DoubleBuffer) vView[i], decays, decay,
                        beta1, 1 - beta1, beta2, 1 - beta2, rootBc2, eps, stepSize);
            }
        }
    }

    // The same update for FLOAT and DOUBLE tensors: Java has no generics over primitive buffers.
    private static void update(FloatBuffer p, FloatBuffer g, FloatBuffer m, FloatBuffer v, boolean decays, float decay,
                               float b1, float c1, float b2, float c2, float rootBc2, float eps, float stepSize) {
        for (int j = 0, n = p.limit(); j < n; j++) {
            float w = decays ? p.get(j) * decay : p.get(j), gj = g.get(j);
            float mj = m.get(j) * b1 + gj * c1;
            float vj = v.get(j) * b2 + gj * gj * c2;
            m.put(j, mj);
            v.put(j, vj);
            p.put(j, w - mj / ((float) Math.sqrt(vj) / rootBc2 + eps) * stepSize);
        }
    }

    private static void update(DoubleBuffer p, DoubleBuffer g, DoubleBuffer m, DoubleBuffer v, boolean decays, double decay,
                               double b1, double c1, double b2, double c2, double rootBc2, double eps, double stepSize) {
        for (int j = 0, n = p.limit(); j < n; j++) {
            double w = decays ? p.get(j) * decay : p.get(j), gj = g.get(j);
            double mj = m.get(j) * b1 + gj * c1;
            double vj = v.get(j) * b2 + gj * gj * c2;
            m.put(j, mj);
            v.put(j, vj);
            p.put(j, w - mj / (Math.sqrt(vj) / rootBc2 + eps) * stepSize);
        }
    }

    /** Sets every parameter's gradient to zero (torch's {@code optimizer.zero_grad(set_to_none=False)}). */
    public void zeroGrad() {
        for (Parameter p : params) p.zeroGrad();
    }

    /**
     * Scales all gradients so their global L2 norm is at most maxNorm (as
     * {@code torch.nn.utils.clip_grad_norm_}, with its 1e-6 guard); returns the norm before
     * clipping. The norm is {@link #globalNorm} of the {@link #norm}s in parameter order and the
     * scaling {@link #scaleGradients}: the expert-parallel runtime composes the same three
     * functions across processes, and so gets the same bits.
     */
    public double clipGradients(double maxNorm) {
        for (int i = 0; i < params.length; i++) norms[i] = norm(params[i]);
        double norm = globalNorm(norms);
        double factor = clipFactor(norm, maxNorm);
        if (factor < 1) scaleGradients(factor);
        return norm;
    }

    /** Multiplies every gradient by factor (a {@link #clipFactor} computed elsewhere, in the runtime). */
    public void scaleGradients(double factor) {
        for (Parameter p : params) p.scaleGrad(factor);
    }

    public long steps() { return step; }

    /** Optimizer state for checkpoints: first and second moments, named after their parameters. */
    public List<Moment> moments() {
        List<Moment> out = new ArrayList<>();
        for (int i = 0; i < params.length; i++) out.add(new Moment(params[i].name(), m[i], v[i]));
        return out;
    }

    /** Restores state saved by {@link #moments()} and the step count. */
    public void restore(long steps, Map<String, INDArray> firstMoments, Map<String, INDArray> secondMoments) {
        for (int i = 0; i < params.length; i++) {
            String name = params[i].name();
            INDArray a = firstMoments.get(name), b = secondMoments.get(name);
            if (a == null || b == null) throw new IllegalArgumentException("optimizer state has no moments for '" + name + "'");
            m[i].assign(a);
            v[i].assign(b);
        }
        this.step = steps;
    }

    public record Moment(String parameter, INDArray first, INDArray second) {}

    /** One parameter's gradient L2 norm: the per-tensor term of the global norm, wherever the tensor lives. */
    public static double norm(Parameter p) {
        return Math.sqrt(p.gradSquares());
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
