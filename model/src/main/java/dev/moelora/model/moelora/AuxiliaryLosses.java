package dev.moelora.model.moelora;

import dev.moelora.model.nn.HostValues;
import dev.moelora.model.nn.Slab;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The two auxiliary losses of one MoELoRA module, each a forward/backward pair: the Switch balance
 * loss, whose gradient goes to the router's p, and the supervised-contrastive loss on a sample of
 * the experts' outputs, whose gradient goes to those outputs H. Both count real tokens only. L_bal
 * is computed in every forward and L_cl in every training forward, even at weight 0 (they are
 * statistics too); only training forwards add to the auxiliary loss and have a gradient, scaled by
 * aux (1 / gradient-accumulation steps). It owns the feature-sampling stream and no other
 * randomness; it never writes y, a parameter or the routing.
 *
 * <p>Dimensions: N_real real rows, E experts, K = top-k, D = dOut, M = max features per expert,
 * S sampled features. From {@link RoutingStatistics}' counts and P_e, and H (NK, D):
 * <pre>
 * f_e    = routed_e / (N_real k)                      // (E) a constant, as in Switch Transformer
 * L_bal  = E sum_e f_e P_e
 * F      = at most M rows H_e,n of each expert e, sampled without replacement from its real rows,
 *          labelled e; all of them, drawing nothing, when there are at most M   // (S, D)
 * L_cl   = SupervisedContrastive(F, labels, tau)
 * aux loss += (lambda_bal L_bal + lambda_cl L_cl) / modules
 * </pre>
 * Backward:
 * <pre>
 * dp_bal = aux lambda_bal / modules * E f / N_real    // (E) dL/dp of every real row, to the router
 * dH_e  += aux lambda_cl / modules * dL_cl/dF         // on the sampled rows only
 * </pre>
 * where modules is the number of adapted modules ({@code lossWeight} = 1 / modules), so that
 * lambda means the same whatever the number of modules. A token routed to two experts gives one
 * feature to each.
 */
final class AuxiliaryLosses {
    private final int experts, topK, maxFeatures;
    private final long dOut;
    private final double balanceWeight, contrastiveWeight, temperature, lossWeight;
    private final String name;
    private final DataType dtype;
    private final TopKRouter router;
    private final RoutingStatistics statistics;
    private final SupervisedContrastive contrastive;
    private SplittableRandom sampler;
    private long capacitySlots;
    private Slab features, dFeatures;       // (min(E M, NK), D)
    private final double[] balanceF;        // (E) f_e of the last forward
    private final double[] dpBalance;       // (E) dp_bal of the last backward
    private int[] clPositions = new int[0]; // (S) the routed slots of the sampled features
    private int[] candidates = new int[0], picked = new int[0], labels = new int[0];   // (NK) the sampling's scratch
    private double[] dFeatureValues = new double[0], rowValues = new double[0];   // (S, D), (D) host copies in backward
    private boolean lastTraining;
    private double balanceLoss, contrastiveLoss = Double.NaN;
    private double auxLoss;

    AuxiliaryLosses(String name, DataType dtype, long dOut, MoeLoraConfig config, double lossWeight, long seed,
                    TopKRouter router, RoutingStatistics statistics) {
        this.name = name;
        this.dtype = dtype;
        this.dOut = dOut;
        this.experts = config.experts();
        this.topK = config.topK();
        this.maxFeatures = config.maxFeaturesPerExpert();
        this.balanceWeight = config.balanceWeight();
        this.contrastiveWeight = config.contrastiveWeight();
        this.temperature = config.temperature();
        this.lossWeight = lossWeight;
        this.router = router;
        this.statistics = statistics;
        this.contrastive = new SupervisedContrastive(name, dtype);
        this.sampler = new SplittableRandom(seed);
        this.balanceF = new double[experts];
        this.dpBalance = new double[experts];
    }

    /** Restarts the feature-sampling stream. */
    void reseed(long seed) {
        sampler = new SplittableRandom(seed);
    }

    /** L_bal of the last forward, unweighted. */
    double balanceLoss() { return balanceLoss; }

    /** L_cl of the last forward, unweighted; NaN after an evaluation forward. */
    double contrastiveLoss() { return contrastiveLoss; }

    /** How many features the last training forward sampled for the contrastive loss. */
    int sampledFeatures() { return clPositions.length; }

    /** The auxiliary loss added by the training forwards since the last call, then 0. */
    double takeAuxiliaryLoss() {
        double l = auxLoss;
        auxLoss = 0;
        return l;
    }

    /** Both losses of the last routing, after {@link RoutingStatistics#forward}; H (NK, D). */
    void forward(boolean training, INDArray h) {
        lastTraining = training;
        balanceForward();
        if (!training) {
            contrastiveLoss = Double.NaN;
            clPositions = new int[0];
            return;
        }
        contrastiveLoss = contrastiveForward(h);
        auxLoss += (balanceWeight * balanceLoss + contrastiveWeight * contrastiveLoss) * lossWeight;
    }

    private void balanceForward() {
        int realRows = statistics.realRows();
        long[] routedReal = statistics.routedReal();
        double[] gateMass = statistics.gateMass();
        double bal = 0;
        for (int e = 0; e < experts; e++) {
            balanceF[e] = realRows > 0 ? routedReal[e] / ((double) realRows * topK) : 0;
            bal += balanceF[e] * gateMass[e];
        }
        balanceLoss = experts * bal;
    }

    /** dp_bal (E), to add to dL/dp of every real row; null when the last forward did not train or the term is 0. */
    double[] balanceBackward(double auxScale) {
        int realRows = statistics.realRows();
        double w = lastTraining && realRows > 0 ? auxScale * balanceWeight * lossWeight * experts / realRows : 0;
        if (w == 0) return null;
        for (int e = 0; e < experts; e++) dpBalance[e] = w * balanceF[e];
        return dpBalance;
    }

    /**
     * Samples at most M real rows per expert (all of them, drawing nothing, when there are at most
     * M; otherwise a partial Fisher-Yates shuffle from this module's stream, then sorted), and
     * returns L_cl over their features, keeping dL_cl/dF for backward.
     */
    private double contrastiveForward(INDArray h) {
        int NK = router.rows() * topK;
        long nf = Math.min((long) experts * maxFeatures, NK);
        if (NK > capacitySlots) {
            features = new Slab(name + ".moe_features", dtype, nf * dOut);
            dFeatures = new Slab(name + ".moe_dfeatures", dtype, nf * dOut);
            capacitySlots = NK;
        }
        int[] offset = router.offset(), rowsAll = router.rowsAll();
        boolean[] real = statistics.real();
        if (candidates.length < NK) {
            candidates = new int[NK];
            picked = new int[NK];
            labels = new int[NK];
        }
        int s = 0;
        for (int e = 0; e < experts; e++) {
            int c = 0;
            for (int pos = offset[e]; pos < offset[e + 1]; pos++) if (real[rowsAll[pos]]) candidates[c++] = pos;
            int take = Math.min(c, maxFeatures);
            if (c > maxFeatures) {
                for (int i = 0; i < take; i++) {
                    int j = i + sampler.nextInt(c - i);
                    int t = candidates[i];
                    candidates[i] = candidates[j];
                    candidates[j] = t;
                }
                Arrays.sort(candidates, 0, take);
            }
            for (int i = 0; i < take; i++) {
                picked[s] = candidates[i];
                labels[s++] = e;
            }
        }
        clPositions = Arrays.copyOf(picked, s);
        if (s < 2) {
            clPositions = new int[0];
            return 0.0;
        }
        INDArray f = features.view(s, dOut);
        Rows.gather(h, clPositions, f);                                    // (S, D) sampled H rows
        return contrastive.lossAndGradient(f, Arrays.copyOf(labels, s), temperature, dFeatures.view(s, dOut));
    }

    /** dH (NK, D) += aux lambda_cl / modules * dL_cl/dF on the sampled rows, when the last forward trained. */
    void contrastiveBackward(INDArray dh, double auxScale) {
        double clWeight = auxScale * contrastiveWeight * lossWeight;
        if (!lastTraining || clPositions.length == 0 || clWeight == 0) return;
        int D = (int) dOut, nf = clPositions.length * D;
        if (dFeatureValues.length < nf) dFeatureValues = new double[nf];
        if (rowValues.length < D) rowValues = new double[D];
        HostValues.read(dFeatures.view(clPositions.length, D).data(), dFeatureValues, nf);
        if (dh.offset() != 0) throw new IllegalStateException(name + ": dH must be a view from its buffer's start, offset " + dh.offset());
        DataBuffer db = dh.data();                                         // a Slab view: offsets from the buffer's start
        for (int i = 0; i < clPositions.length; i++) {
            int at = clPositions[i] * D;
            HostValues.read(db, at, rowValues, 0, D);
            for (int c = 0; c < D; c++) rowValues[c] = rowValues[c] + clWeight * dFeatureValues[i * D + c];
            HostValues.write(rowValues, 0, db, at, D);
        }
    }
}
