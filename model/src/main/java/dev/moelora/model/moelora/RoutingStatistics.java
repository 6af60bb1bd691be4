package dev.moelora.model.moelora;

import dev.moelora.model.nn.HostValues;
import dev.moelora.model.nn.Slab;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * What the router of one module did in its last forward, over real tokens only: which rows are
 * real (the row mask; padding rows are routed so that y is defined everywhere, but never
 * counted), the real tokens per expert, the mean gate probability, the gate entropy, and the
 * cosines between the experts' mean outputs; the counts and means are also the balance loss's
 * inputs ({@link AuxiliaryLosses}). It only observes: it never writes y, a gradient or a routing
 * decision, and never draws a random number.
 *
 * <p>Dimensions: N rows, N_real real rows, E experts, D = dOut, NK routed slots. On H (NK, D):
 * <pre>
 * routed_e  = real tokens routed to e                 // (E) they sum to k N_real (the router's choice, before a capacity drop)
 * dropped   = real tokens' slots the capacity dropped
 * kept_e    = routed_e less e's dropped slots
 * P_e       = mean over real rows of p_e              // (E)
 * entropy   = mean over real rows of -sum_e p_e log p_e
 * mean_e    = mean of H_e over e's kept real rows     // (E, D) one GEMM per expert: (1/kept_e) real_e^T H_e
 * cos_ij    = mean_i . mean_j / (|mean_i| |mean_j|), 0 when either norm is 0   // (E, E)
 * </pre>
 * Rows and experts are summed in ascending order.
 */
final class RoutingStatistics {
    private final int experts;
    private final long dOut;
    private final DataType dtype;
    private final String name;
    private final TopKRouter router;
    private long capacitySlots;
    private Slab realAll;                   // (NK) 1 for the slots of real rows
    private double[] realSlots = new double[0];   // (NK) its host copy
    private double[] meanValues = new double[0];  // (E, D) host copy of the means
    private final Slab means;               // (E, D)
    private boolean[] real = new boolean[0];  // (N)
    private int realRows;
    private final long[] routedReal;        // (E)
    private final long[] keptReal;          // (E)
    private final double[] gateMass;        // (E)
    private double gateEntropy;
    private final double[][] cosine;        // (E, E)

    RoutingStatistics(String name, DataType dtype, int experts, long dOut, TopKRouter router) {
        this.name = name;
        this.dtype = dtype;
        this.experts = experts;
        this.dOut = dOut;
        this.router = router;
        this.routedReal = new long[experts];
        this.keptReal = new long[experts];
        this.gateMass = new double[experts];
        this.cosine = new double[experts][experts];
        this.means = new Slab(name + ".moe_means", dtype, experts * dOut);
    }

    /** (N) whether each row of the last forward is a real token. */
    boolean[] real() { return real; }

    /** N_real of the last forward. */
    int realRows() { return realRows; }

    /** (E) real tokens routed to each expert in the last forward. */
    long[] routedReal() { return routedReal; }

    /** (E) P_e of the last forward. */
    double[] gateMass() { return gateMass; }

    /** The numbers of the last forward as a record, with the losses that {@link AuxiliaryLosses} computed from them. */
    RoutingStats snapshot(String module, double balanceLoss, double contrastiveLoss) {
        double[][] cos = new double[experts][];
        for (int e = 0; e < experts; e++) cos[e] = cosine[e].clone();
        return new RoutingStats(module, realRows, routedReal.clone(), gateMass.clone(), gateEntropy, balanceLoss, contrastiveLoss, cos,
                router.droppedReal());
    }

    /** Which of the N rows of the coming forward are real: the rows of {@code rowMask} that are not 0 (null: every row). */
    boolean[] markReal(float[] rowMask, int N) {
        if (real.length != N) real = new boolean[N];
        realRows = 0;
        for (int r = 0; r < N; r++) {
            real[r] = rowMask == null || rowMask[r] != 0f;
            if (real[r]) realRows++;
        }
        return real;
    }

    /** Counts over the real rows {@link #markReal} marked, for the last routing, with H (NK, D). */
    void forward(INDArray h) {
        int N = router.rows(), K = router.topK(), NK = N * K;           // NK before any drop: the buffers' size
        if (NK > capacitySlots) {
            realAll = new Slab(name + ".moe_real", dtype, NK);
            capacitySlots = NK;
        }
        int[] slotExpert = router.slotExpert();
        double[] p = router.p();
        Arrays.fill(routedReal, 0);
        Arrays.fill(gateMass, 0);
        double entropy = 0;
        for (int r = 0; r < N; r++) {
            if (!real[r]) continue;
            for (int k = 0; k < K; k++) routedReal[slotExpert[r * K + k]]++;
            for (int e = 0; e < experts; e++) {
                double pe = p[r * experts + e];
                gateMass[e] += pe;
                if (pe > 0) entropy -= pe * Math.log(pe);
            }
        }
        if (realRows > 0) for (int e = 0; e < experts; e++) gateMass[e] /= realRows;
        gateEntropy = realRows > 0 ? entropy / realRows : 0;

        int[] rowsAll = router.rowsAll(), offset = router.offset(), perExpert = router.perExpert();
        INDArray realRow = realAll.view(1, NK);
        if (realSlots.length < NK) realSlots = new double[NK];
        Arrays.fill(keptReal, 0);
        for (int e = 0; e < experts; e++) {
            for (int i = offset[e]; i < offset[e + 1]; i++) {
                realSlots[i] = real[rowsAll[i]] ? 1.0 : 0.0;
                if (real[rowsAll[i]]) keptReal[e]++;
            }
        }
        HostValues.write(realSlots, realRow.data(), router.routed());
        INDArray mean = means.view(experts, dOut);
        for (int e = 0; e < experts; e++) {
            INDArray meanRow = Rows.range(mean, e, 1);
            if (keptReal[e] == 0) {
                meanRow.assign(0.0);
                continue;
            }
            INDArray seg = Nd4j.create(realRow.data(), new long[] {1, perExpert[e]}, realRow.stride(), offset[e], 'c', dtype);
            Nd4j.gemm(seg, Rows.range(h, offset[e], perExpert[e]), meanRow, false, false, 1.0 / keptReal[e], 0.0);  // overwrites the row
        }
        if (meanValues.length < experts * dOut) meanValues = new double[(int) (experts * dOut)];
        HostValues.read(mean.data(), meanValues, (int) (experts * dOut));
        cosines(meanValues);
    }

    private void cosines(double[] m) {
        int d = (int) dOut;
        double[] norm = new double[experts];
        for (int e = 0; e < experts; e++) {
            double s = 0;
            for (int c = 0; c < d; c++) s += m[e * d + c] * m[e * d + c];
            norm[e] = Math.sqrt(s);
        }
        for (int i = 0; i < experts; i++) {
            for (int j = 0; j < experts; j++) {
                if (norm[i] == 0 || norm[j] == 0) {
                    cosine[i][j] = 0;
                    continue;
                }
                double s = 0;
                for (int c = 0; c < d; c++) s += m[i * d + c] * m[j * d + c];
                cosine[i][j] = s / (norm[i] * norm[j]);
            }
        }
    }
}
