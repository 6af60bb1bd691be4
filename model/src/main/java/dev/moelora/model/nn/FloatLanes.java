package dev.moelora.model.nn;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float loops of the fused kernels whose cost is exp (the loss over the vocabulary, attention's
 * softmax, SwiGLU), in the machine's widest SIMD lanes through the Vector API: a scalar Java exp
 * costs ~6 ns, a lane of the API's ~0.1 ns (BENCHMARKS.md), which is what ND4J's own element-wise
 * ops reach with their SIMD code. Results agree with the scalar double loops to float rounding
 * (tested); they are the same for the same machine and JVM on every run (no threads here, fixed
 * order of lanes and of the tail). Call only when {@link VectorApi#PRESENT}.
 */
public final class FloatLanes {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private FloatLanes() {}

    /** y[i] = u[i] * g[i] / (1 + exp(-g[i])) for i < n: SwiGLU's silu(gate) * up. */
    public static void siluTimes(float[] g, float[] u, float[] y, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector gv = FloatVector.fromArray(S, g, i);
            FloatVector sig = gv.neg().lanewise(VectorOperators.EXP).add(1f);
            gv.div(sig).mul(FloatVector.fromArray(S, u, i)).intoArray(y, i);
        }
        for (; i < n; i++) y[i] = u[i] * (g[i] / (1f + (float) Math.exp(-g[i])));
    }

    /**
     * SwiGLU's backward with s = sigmoid(g): du = d * g * s, dg = d * u * s * (1 + g * (1 - s)).
     * du and dg may be u and g themselves.
     */
    public static void swiGluBackward(float[] d, float[] g, float[] u, float[] dg, float[] du, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector dv = FloatVector.fromArray(S, d, i), gv = FloatVector.fromArray(S, g, i), uv = FloatVector.fromArray(S, u, i);
            FloatVector s = FloatVector.broadcast(S, 1f).div(gv.neg().lanewise(VectorOperators.EXP).add(1f));
            FloatVector dgv = dv.mul(uv).mul(s).mul(gv.mul(s.neg().add(1f)).add(1f));
            dv.mul(gv).mul(s).intoArray(du, i);
            dgv.intoArray(dg, i);
        }
        for (; i < n; i++) {
            float s = 1f / (1f + (float) Math.exp(-g[i]));
            float dgi = d[i] * u[i] * s * (1f + g[i] * (1f - s));
            du[i] = d[i] * g[i] * s;
            dg[i] = dgi;
        }
    }

    /** x[i] = x[i] * scale + bias[i] (bias may be null: no bias); returns the largest result. */
    public static float scaleAddMax(float[] x, float scale, float[] bias, int n) {
        int i = 0;
        FloatVector max = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i).mul(scale);
            if (bias != null) v = v.add(FloatVector.fromArray(S, bias, i));
            v.intoArray(x, i);
            max = max.max(v);
        }
        float m = max.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) {
            x[i] = x[i] * scale + (bias == null ? 0f : bias[i]);
            m = Math.max(m, x[i]);
        }
        return m;
    }

    /** The largest of x[0, n). */
    public static float max(float[] x, int n) {
        return scaleAddMax(x, 1f, null, n);
    }

    /** x[i] = exp(x[i] - shift) for i < n; returns their sum (lane partial sums, then the tail). */
    public static float expShiftSum(float[] x, float shift, int n) {
        int i = 0;
        FloatVector sum = FloatVector.zero(S);
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector e = FloatVector.fromArray(S, x, i).sub(shift).lanewise(VectorOperators.EXP);
            e.intoArray(x, i);
            sum = sum.add(e);
        }
        float total = sum.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) total += x[i] = (float) Math.exp(x[i] - shift);
        return total;
    }

    /** sum_i a[i] * b[i] over i < n (lane partial sums, then the tail). */
    public static float dot(float[] a, float[] b, int n) {
        int i = 0;
        FloatVector sum = FloatVector.zero(S);
        for (int end = S.loopBound(n); i < end; i += S.length()) sum = sum.add(FloatVector.fromArray(S, a, i).mul(FloatVector.fromArray(S, b, i)));
        float total = sum.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) total += a[i] * b[i];
        return total;
    }

    /** y[i] = a[i] * b[i] for i < n; y may be a or b. */
    public static void mul(float[] a, float[] b, float[] y, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) FloatVector.fromArray(S, a, i).mul(FloatVector.fromArray(S, b, i)).intoArray(y, i);
        for (; i < n; i++) y[i] = a[i] * b[i];
    }

    /** y[i] = s * (a[i] - c * b[i]) for i < n; y may be a or b. */
    public static void scaledDifference(float[] a, float[] b, float c, float s, float[] y, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector.fromArray(S, a, i).sub(FloatVector.fromArray(S, b, i).mul(c)).mul(s).intoArray(y, i);
        }
        for (; i < n; i++) y[i] = s * (a[i] - c * b[i]);
    }

    /** x[i] *= s for i < n. */
    public static void scale(float[] x, float s, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) FloatVector.fromArray(S, x, i).mul(s).intoArray(x, i);
        for (; i < n; i++) x[i] *= s;
    }
}
