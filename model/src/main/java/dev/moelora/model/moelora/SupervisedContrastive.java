package dev.moelora.model.moelora;

import dev.moelora.model.nn.HostValues;
import dev.moelora.model.nn.Slab;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The supervised-contrastive InfoNCE loss (Khosla et al. 2020) over a set of labelled features,
 * with its gradient, as MoELoRA uses it: the label of a feature is the expert that produced it.
 *
 * <pre>
 * z_i = h_i / max(||h_i||, 1e-12)                          // (S, C)
 * sim_ij = z_i . z_j / tau                                 // (S, S)
 * P(i) = { j != i : label_j = label_i }
 * L_i = -(1/|P(i)|) sum_{p in P(i)} log( exp(sim_ip) / sum_{a != i} exp(sim_ia) )
 * L = mean of L_i over the anchors with |P(i)| >= 1, 0 when there are none
 * </pre>
 *
 * Backward: with Q valid anchors, dL/dsim_ip = -1/(Q |P(i)|) for p in P(i), plus
 * (1/Q) softmax_{a != i}(sim_i.)_a for every a != i; dZ = (C + C^T) Z / tau; through the
 * normalisation dh_i = (dz_i - z_i (z_i . dz_i)) / ||h_i|| (or dz_i / 1e-12 below the floor).
 * The two S x S x C products run as GEMMs; the O(S^2) and O(S C) parts run in Java in double, in
 * a fixed order (anchors ascending, then their partners ascending), so the result is
 * reproducible bit for bit; they work on Java arrays copied in and out in bulk ({@link HostValues}).
 * It owns its scratch buffers and never allocates once they are grown.
 */
final class SupervisedContrastive {
    static final double NORM_FLOOR = 1e-12;

    private final String name;
    private final DataType dtype;
    private long capRows, capCols;
    private Slab z, sim, coef;      // (S, C), (S, S), (S, S)
    private double[] norms = new double[0], simD = new double[0], c = new double[0];
    private double[] hD = new double[0], zD = new double[0], dD = new double[0];   // (S, C) h, z, dh

    SupervisedContrastive(String name, DataType dtype) {
        this.name = name;
        this.dtype = dtype;
    }

    private void ensureCapacity(long rows, long cols) {
        if (rows <= capRows && cols <= capCols) return;
        capRows = Math.max(rows, capRows);
        capCols = Math.max(cols, capCols);
        z = new Slab(name + ".cl_z", dtype, capRows * capCols);
        sim = new Slab(name + ".cl_sim", dtype, capRows * capRows);
        coef = new Slab(name + ".cl_coef", dtype, capRows * capRows);
        norms = new double[(int) capRows];
        simD = new double[(int) (capRows * capRows)];
        c = new double[(int) (capRows * capRows)];
        hD = new double[(int) (capRows * capCols)];
        zD = new double[(int) (capRows * capCols)];
        dD = new double[(int) (capRows * capCols)];
    }

    /**
     * Returns L for the rows of {@code h} (S, C), c-order, and writes dL/dh into {@code dh} (S, C),
     * c-order. Both must be views starting at their buffer's first element (Slab views).
     */
    double lossAndGradient(INDArray h, int[] labels, double tau, INDArray dh) {
        int s = (int) h.size(0), cols = (int) h.size(1);
        ensureCapacity(s, cols);
        int sc = s * cols;
        INDArray zv = z.view(s, cols);
        HostValues.read(h.data(), hD, sc);
        for (int i = 0; i < s; i++) {                                      // z = h / max(||h||, eps)
            double sq = 0;
            for (int k = 0; k < cols; k++) {
                double v = hD[i * cols + k];
                sq += v * v;
            }
            norms[i] = Math.sqrt(sq);
            double inv = 1.0 / Math.max(norms[i], NORM_FLOOR);
            for (int k = 0; k < cols; k++) zD[i * cols + k] = hD[i * cols + k] * inv;
        }
        HostValues.write(zD, zv.data(), sc);
        HostValues.read(zv.data(), zD, sc);                                // z as the model's dtype stores it
        INDArray simv = sim.view(s, s);
        Nd4j.gemm(zv, zv, simv, false, true, 1.0 / tau, 0.0);             // (S, S) sim = Z Z^T / tau
        HostValues.read(simv.data(), simD, s * s);
        java.util.Arrays.fill(c, 0, s * s, 0.0);
        int anchors = 0;
        for (int i = 0; i < s; i++) if (positives(labels, i, s) > 0) anchors++;
        double loss = 0;
        for (int i = 0; i < s && anchors > 0; i++) {
            int pos = positives(labels, i, s);
            if (pos == 0) continue;
            double max = Double.NEGATIVE_INFINITY;
            for (int a = 0; a < s; a++) if (a != i) max = Math.max(max, simD[i * s + a]);
            double sum = 0;
            for (int a = 0; a < s; a++) if (a != i) sum += Math.exp(simD[i * s + a] - max);
            double logDenominator = max + Math.log(sum);
            double li = 0;
            for (int p = 0; p < s; p++) {
                if (p != i && labels[p] == labels[i]) {
                    li -= simD[i * s + p] - logDenominator;
                    c[i * s + p] -= 1.0 / ((double) anchors * pos);
                }
            }
            loss += li / pos;
            for (int a = 0; a < s; a++) if (a != i) c[i * s + a] += Math.exp(simD[i * s + a] - logDenominator) / anchors;
        }
        if (anchors == 0) {
            dh.assign(0.0);
            return 0.0;
        }
        loss /= anchors;
        INDArray coefv = coef.view(s, s);
        double[] sym = simD;                                               // sim is no longer needed: its array takes (C + C^T) / tau
        for (int i = 0; i < s; i++) {
            for (int j = 0; j < s; j++) sym[i * s + j] = (c[i * s + j] + c[j * s + i]) / tau;
        }
        HostValues.write(sym, coefv.data(), s * s);
        Nd4j.gemm(coefv, zv, dh, false, false, 1.0, 0.0);                 // (S, C) dZ = (C + C^T) Z / tau
        HostValues.read(dh.data(), dD, sc);
        for (int i = 0; i < s; i++) {                                      // through the normalisation
            if (norms[i] < NORM_FLOOR) {
                for (int k = 0; k < cols; k++) dD[i * cols + k] = dD[i * cols + k] / NORM_FLOOR;
                continue;
            }
            double dot = 0;
            for (int k = 0; k < cols; k++) dot += zD[i * cols + k] * dD[i * cols + k];
            for (int k = 0; k < cols; k++) {
                int at = i * cols + k;
                dD[at] = (dD[at] - zD[at] * dot) / norms[i];
            }
        }
        HostValues.write(dD, dh.data(), sc);
        return loss;
    }

    private static int positives(int[] labels, int i, int s) {
        int n = 0;
        for (int j = 0; j < s; j++) if (j != i && labels[j] == labels[i]) n++;
        return n;
    }
}
