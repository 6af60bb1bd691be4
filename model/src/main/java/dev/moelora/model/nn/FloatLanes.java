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
        int i = 0;
        FloatVector max = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int end = S.loopBound(n); i < end; i += S.length()) max = max.max(FloatVector.fromArray(S, x, i));
        float m = max.reduceLanes(VectorOperators.MAX);
        for (; i < n; i++) m = Math.max(m, x[i]);
        return m;
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

    /** values rounded to float, for a frozen weight row the lanes read. */
    public static float[] rounded(double[] values) {
        float[] f = new float[values.length];
        for (int i = 0; i < f.length; i++) f[i] = (float) values[i];
        return f;
    }

    /** sum of x[0, n) (lane partial sums, then the tail). */
    public static float sum(float[] x, int n) {
        int i = 0;
        FloatVector sum = FloatVector.zero(S);
        for (int end = S.loopBound(n); i < end; i += S.length()) sum = sum.add(FloatVector.fromArray(S, x, i));
        float total = sum.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) total += x[i];
        return total;
    }

    /** x[i] += c for i < n. */
    public static void addScalar(float[] x, float c, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) FloatVector.fromArray(S, x, i).add(c).intoArray(x, i);
        for (; i < n; i++) x[i] += c;
    }

    /** y[i] = a[i] * b[i] + c[i] for i < n; y may be any of them. */
    public static void mulAdd(float[] a, float[] b, float[] c, float[] y, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector.fromArray(S, a, i).mul(FloatVector.fromArray(S, b, i)).add(FloatVector.fromArray(S, c, i)).intoArray(y, i);
        }
        for (; i < n; i++) y[i] = a[i] * b[i] + c[i];
    }

    /**
     * The exact GELU's cdf and output: cdf[i] = 0.5 (1 + erf(x[i] / sqrt 2)), y[i] = x[i] cdf[i],
     * with erf as Eigen's float rational approximation (x clamped to [-4, 4], absolute error
     * below 1e-7 against erf, which is float's resolution there). y may be x.
     */
    public static void gelu(float[] x, float[] y, float[] cdf, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector xv = FloatVector.fromArray(S, x, i);
            FloatVector c = erf(xv.mul(INV_SQRT2)).add(1f).mul(0.5f);
            c.intoArray(cdf, i);
            xv.mul(c).intoArray(y, i);
        }
        for (; i < n; i++) {
            float c = 0.5f * (1f + erf(x[i] * INV_SQRT2));
            cdf[i] = c;
            y[i] = x[i] * c;
        }
    }

    /** GELU's backward: dx[i] = dy[i] (cdf[i] + x[i] exp(-x[i]^2 / 2) / sqrt(2 pi)). dx may be dy. */
    public static void geluBackward(float[] dy, float[] x, float[] cdf, float[] dx, int n) {
        int i = 0;
        for (int end = S.loopBound(n); i < end; i += S.length()) {
            FloatVector xv = FloatVector.fromArray(S, x, i);
            FloatVector pdf = xv.mul(xv).mul(-0.5f).lanewise(VectorOperators.EXP).mul(INV_SQRT_2PI);
            FloatVector.fromArray(S, dy, i).mul(xv.mul(pdf).add(FloatVector.fromArray(S, cdf, i))).intoArray(dx, i);
        }
        for (; i < n; i++) dx[i] = dy[i] * (cdf[i] + x[i] * (float) Math.exp(-0.5f * x[i] * x[i]) * INV_SQRT_2PI);
    }

    private static final float INV_SQRT2 = (float) (1.0 / Math.sqrt(2.0)), INV_SQRT_2PI = (float) (1.0 / Math.sqrt(2.0 * Math.PI));
    // erf(x) ~ x P(x^2) / Q(x^2) on [-4, 4] (Eigen's generic_fast_erf_float)
    private static final float A1 = -1.60960333262415e-02f, A3 = -2.95459980854025e-03f, A5 = -7.34990630326855e-04f,
            A7 = -5.69250639462346e-05f, A9 = -2.10102402082508e-06f, A11 = 2.77068142495902e-08f, A13 = -2.72614225801306e-10f;
    private static final float B0 = -1.42647390514189e-02f, B2 = -7.37332916720468e-03f, B4 = -1.68282697438203e-03f,
            B6 = -2.13374055278905e-04f, B8 = -1.45660718464996e-05f;

    private static FloatVector erf(FloatVector x) {
        FloatVector c = x.max(-4f).min(4f), x2 = c.mul(c);
        FloatVector p = x2.mul(A13).add(A11).mul(x2).add(A9).mul(x2).add(A7).mul(x2).add(A5).mul(x2).add(A3).mul(x2).add(A1).mul(c);
        FloatVector q = x2.mul(B8).add(B6).mul(x2).add(B4).mul(x2).add(B2).mul(x2).add(B0);
        return p.div(q);
    }

    private static float erf(float x) {
        float c = Math.max(-4f, Math.min(4f, x)), x2 = c * c;
        float p = ((((((x2 * A13 + A11) * x2 + A9) * x2 + A7) * x2 + A5) * x2 + A3) * x2 + A1) * c;
        float q = (((x2 * B8 + B6) * x2 + B4) * x2 + B2) * x2 + B0;
        return p / q;
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
