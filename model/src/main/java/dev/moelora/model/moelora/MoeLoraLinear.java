package dev.moelora.model.moelora;

import dev.moelora.model.nn.Linear;
import dev.moelora.model.nn.Slab;
import dev.moelora.model.optim.Parameter;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.random.impl.BernoulliDistribution;
import org.nd4j.linalg.api.rng.Random;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * MoELoRA (Luo et al., arXiv 2402.12851) as a decorator over one frozen layer: a token-level top-k
 * router over E low-rank experts, with the Switch balance loss and a supervised-contrastive loss on
 * the experts' outputs computed here, in forward, and back-propagated here, in backward. This
 * single-process module is the reference the expert-parallel runtime must equal bit for bit. It
 * never touches the base layer's weights.
 *
 * <p>Dimensions: N = B*T rows, C = dIn, D = dOut, E experts, K = top-k, R = r_e, NK = N*K routed
 * slots. Forward, on x (N, C):
 * <pre>
 * y      = base(x)                                    // (N, D)
 * logits = x W_g^T                                    // (N, E)  the gate sees x without dropout
 * p      = softmax(logits) per row                    // (N, E)
 * K_n    = the k largest p_n, ties to the lower index; kept sorted by expert index
 * g_nk   = p_nk / S_n, S_n = sum_{j in K_n} p_nj      // (N, K)  S_n summed in expert-index order
 * X_e    = drop(x)[R_e], R_e = { n : e in K_n }       // (n_e, C) rows ascending; all experts in one (NK, C) buffer
 * h1_e   = X_e A_e^T                                  // (n_e, R)  by the expert bank (LowRankExpert), here or remote
 * H_e    = s_e h1_e B_e^T,  s_e = alpha / r_e         // (n_e, D) contribution and contrastive feature
 * y_n   += g_ne H_e,n  for e in K_n, experts in ascending index order
 * </pre>
 * Backward, given dy (N, D), after base.backward:
 * <pre>
 * dg_ne  = dy_n . H_e,n                               // (NK)
 * dH_e   = g_ne dy[R_e] + aux * lambda_cl / modules * dL_cl/dH_e (sampled rows only)   // (n_e, D)
 * dB_e  += s_e dH_e^T h1_e                            // (D, R)  by the expert bank
 * dh1_e  = s_e dH_e B_e                               // (n_e, R)
 * dA_e  += dh1_e^T X_e                                // (R, C)
 * dX_e   = dh1_e A_e                                  // (n_e, C) summed per row over its slots (ascending expert), times the dropout mask, added to dx
 * dp_nj  = (dg_nj - sum_{k in K_n} dg_nk g_nk) / S_n  for j in K_n, else 0;  + aux * lambda_bal / modules * E f_j / N_real on real rows
 * dlogit = p (dp - &lt;p, dp&gt;)                            // (N, E)
 * dW_g  += dlogit^T x;  dx += dlogit W_g              // (E, C), (N, C)
 * </pre>
 * where modules is the number of adapted modules and aux the auxiliary-loss scale
 * (1 / gradient-accumulation steps). The dx of a row is: the base layer's, then its experts'
 * (summed over its slots in ascending expert index, times the dropout mask), then the gate's.
 *
 * <p>Losses, in training forwards only, over real tokens only (row mask; padding rows are routed
 * so that y is defined everywhere, but never counted): L_bal = E sum_e f_e P_e, f_e = (real tokens
 * routed to e) / (N_real k), a constant as in Switch Transformer, P_e = mean p_e; L_cl =
 * {@link SupervisedContrastive} over at most {@code maxFeaturesPerExpert} features H_e,n per
 * expert, sampled without replacement from the expert's real rows with this module's stream
 * (all of them, without drawing, when there are few enough), labelled by expert. A token routed
 * to two experts gives one feature to each. The module's auxiliary loss is
 * (lambda_bal L_bal + lambda_cl L_cl) / (number of adapted modules), so that lambda means the
 * same whatever the number of modules; both losses are computed even at weight 0 (statistics).
 *
 * <p>Determinism: every reduction has a fixed order (experts in index order, rows ascending,
 * slots per row in ascending expert index), the routing math runs in Java in double, and the only
 * randomness is this module's two streams (dropout, feature sampling), both restarted by
 * {@link #reseed}. There is no capacity limit: no token is ever dropped.
 *
 * <p>Dropout, as LoRA's, is one inverted mask on x (N, C) per forward, shared by a row's experts,
 * drawn from the module's ND4J random stream; the gate always sees the clean x. Logits come from a
 * GEMM in the model's dtype; softmax, top-k and g are computed from them in double, and g is
 * stored back in the model's dtype before it multiplies H.
 *
 * <p>Buffers are Slabs grown when the batch grows; a step allocates only views and small Java
 * arrays of routing indices (O(N K) ints, O(E) doubles).
 */
final class MoeLoraLinear implements Linear {
    private final Linear base;
    private final int experts, topK;
    private final double dropout, balanceWeight, contrastiveWeight, temperature, lossWeight;
    private final int maxFeatures;
    private final Parameter gate;     // (E, C)
    private final ExpertBank bank;    // the E experts: here, or in expert actors
    private final Random dropoutRng;
    private final SupervisedContrastive contrastive;
    private SplittableRandom sampler;
    private boolean training = true;
    private float[] rowMask;
    private double auxScale = 1;
    private double auxLoss;

    private long capacityRows;
    private Slab dropMask, dropped;          // (N, C)
    private Slab logits, dlogits;            // (N, E)
    private Slab xAll;                       // (NK, C) X_e of every expert; backward overwrites it with dX_e
    private Slab hAll, ghAll, dyAll;         // (NK, D)
    private Slab gAll, dgAll, realAll;       // (NK)
    private Slab slotOut;                    // (N, D)
    private Slab slotIn, dxAdapter;          // (N, C)
    private Slab features, dFeatures;        // (min(E M, NK), D)
    private final Slab means;                // (E, D)

    // routing of the last forward, in Java: small arrays, re-allocated when N changes
    private int n = -1;
    private double[] p;            // (N, E)
    private int[] slotExpert;      // (N, K) ascending expert index per row
    private double[] slotGate;     // (N, K) g
    private double[] slotSum;      // (N) S_n
    private int[] rowsAll;         // (NK) source row of each routed slot, expert by expert
    private int[][] slotIndex;     // K x (N): where slot k of row n sits among the routed slots
    private final int[] perExpert, offset;      // (E), (E + 1)
    private boolean[] real;        // (N)
    private int realRows;
    private INDArray lastX, lastMask;     // (N, C) the input, the dropout mask / keep
    private boolean lastTraining;
    private int[] clPositions = new int[0];
    private final double[] balanceF; // (E) f_e of the last training forward

    // statistics of the last forward
    private final long[] routedReal;
    private final double[] gateMass;
    private double gateEntropy, balanceLoss, contrastiveLoss = Double.NaN;
    private final double[][] cosine;

    MoeLoraLinear(Linear base, INDArray gateInit, INDArray[] aInit, INDArray[] bInit, MoeLoraConfig config,
                  double lossWeight, long seed) {
        this(base, gateInit, checkedBank(base, aInit, bInit, config), config, lossWeight, seed);
    }

    private static ExpertBank checkedBank(Linear base, INDArray[] aInit, INDArray[] bInit, MoeLoraConfig config) {
        if (aInit.length != config.experts() || bInit.length != config.experts()) {
            throw new IllegalArgumentException(base.name() + ": expert tensors do not match " + config.experts() + " experts");
        }
        return new LocalExpertBank(base.name(), aInit, bInit, config.scale());
    }

    /** A module whose experts are {@code bank}, wherever they run. */
    MoeLoraLinear(Linear base, INDArray gateInit, ExpertBank bank, MoeLoraConfig config, double lossWeight, long seed) {
        this.base = base;
        this.experts = config.experts();
        this.topK = config.topK();
        this.dropout = config.dropout();
        this.balanceWeight = config.balanceWeight();
        this.contrastiveWeight = config.contrastiveWeight();
        this.temperature = config.temperature();
        this.maxFeatures = config.maxFeaturesPerExpert();
        this.lossWeight = lossWeight;
        if (gateInit.size(0) != experts || gateInit.size(1) != base.dIn()) {
            throw new IllegalArgumentException(base.name() + ": the gate is " + java.util.Arrays.toString(gateInit.shape())
                    + ", expected [" + experts + ", " + base.dIn() + "]");
        }
        this.gate = new Parameter(base.name() + ".moe_gate", gateInit);
        this.bank = bank;
        this.dropoutRng = Nd4j.getRandomFactory().getNewRandomInstance(dropoutSeed(seed));
        this.sampler = new SplittableRandom(seed);
        this.contrastive = new SupervisedContrastive(base.name(), gateInit.dataType());
        this.perExpert = new int[experts];
        this.offset = new int[experts + 1];
        this.balanceF = new double[experts];
        this.routedReal = new long[experts];
        this.gateMass = new double[experts];
        this.cosine = new double[experts][experts];
        this.means = new Slab(base.name() + ".moe_means", gateInit.dataType(), experts * base.dOut());
    }

    @Override public String name() { return base.name(); }
    @Override public long dIn() { return base.dIn(); }
    @Override public long dOut() { return base.dOut(); }

    Linear base() { return base; }
    Parameter gate() { return gate; }
    ExpertBank bank() { return bank; }
    Parameter a(int e) { return ((LocalExpertBank) bank).a(e); }
    Parameter b(int e) { return ((LocalExpertBank) bank).b(e); }
    int experts() { return experts; }

    void setTraining(boolean training) { this.training = training; }
    void setRowMask(float[] mask) { this.rowMask = mask; }
    void setAuxiliaryLossScale(double s) { this.auxScale = s; }

    /** Restarts both random streams (dropout masks, feature sampling) from one seed. */
    void reseed(long seed) {
        sampler = new SplittableRandom(seed);
        dropoutRng.setSeed(dropoutSeed(seed));
    }

    private static long dropoutSeed(long seed) {
        return seed ^ 0x9E3779B97F4A7C15L;
    }

    /** The auxiliary loss added by the training forwards since the last call, then 0. */
    double takeAuxiliaryLoss() {
        double l = auxLoss;
        auxLoss = 0;
        return l;
    }

    /** The experts of every row's slots in the last forward, (N, K) ascending per row: a copy. */
    int[] routing() {
        return Arrays.copyOf(slotExpert, n * topK);
    }

    /** The gate weights g of every row's slots in the last forward, (N, K): a copy. */
    double[] slotWeights() {
        return Arrays.copyOf(slotGate, n * topK);
    }

    /** How many features the last training forward sampled for the contrastive loss. */
    int sampledFeatures() {
        return clPositions.length;
    }

    RoutingStats stats() {
        double[][] cos = new double[experts][];
        for (int e = 0; e < experts; e++) cos[e] = cosine[e].clone();
        return new RoutingStats(name(), routedReal.clone(), gateMass.clone(), gateEntropy, balanceLoss, contrastiveLoss, cos);
    }

    private void ensureCapacity(long rows) {
        if (rows <= capacityRows) return;
        DataType dt = gate.value().dataType();
        long c = dIn(), d = dOut(), nk = rows * topK, nf = Math.min((long) experts * maxFeatures, nk);
        String m = name() + ".";
        if (dropout > 0) {
            dropMask = new Slab(m + "moe_dropout", dt, rows * c);
            dropped = new Slab(m + "moe_dropped", dt, rows * c);
        }
        logits = new Slab(m + "moe_logits", dt, rows * experts);
        dlogits = new Slab(m + "moe_dlogits", dt, rows * experts);
        xAll = new Slab(m + "moe_x", dt, nk * c);
        hAll = new Slab(m + "moe_h", dt, nk * d);
        ghAll = new Slab(m + "moe_gh", dt, nk * d);
        dyAll = new Slab(m + "moe_dy", dt, nk * d);
        gAll = new Slab(m + "moe_g", dt, nk);
        dgAll = new Slab(m + "moe_dg", dt, nk);
        realAll = new Slab(m + "moe_real", dt, nk);
        slotOut = new Slab(m + "moe_slot_out", dt, rows * d);
        slotIn = new Slab(m + "moe_slot_in", dt, rows * c);
        dxAdapter = new Slab(m + "moe_dx", dt, rows * c);
        features = new Slab(m + "moe_features", dt, nf * d);
        dFeatures = new Slab(m + "moe_dfeatures", dt, nf * d);
        capacityRows = rows;
    }

    private void ensureRouting(int rows) {
        if (rows == n) return;
        n = rows;
        p = new double[rows * experts];
        slotExpert = new int[rows * topK];
        slotGate = new double[rows * topK];
        slotSum = new double[rows];
        rowsAll = new int[rows * topK];
        slotIndex = new int[topK][rows];
        real = new boolean[rows];
    }

    private static INDArray rows(INDArray t, long from, long count) {
        return t.get(NDArrayIndex.interval(from, from + count), NDArrayIndex.all());
    }

    @Override
    public void forward(INDArray x, INDArray y) {
        base.forward(x, y);
        int N = (int) x.size(0);
        long C = dIn(), D = dOut();
        if (rowMask != null && rowMask.length != N) {
            throw new IllegalArgumentException(name() + ": the row mask has " + rowMask.length + " rows, the forward " + N);
        }
        ensureCapacity(N);
        ensureRouting(N);
        lastTraining = training;
        lastX = x;
        if (N == 0) return;
        int NK = N * topK;

        INDArray xd = x;                                                   // (N, C) expert input
        lastMask = null;
        if (dropout > 0 && training) {
            double keep = 1.0 - dropout;
            lastMask = dropMask.view(N, C);
            Nd4j.getExecutioner().exec(new BernoulliDistribution(lastMask, keep), dropoutRng);
            lastMask.divi(keep);
            xd = dropped.view(N, C).assign(x).muli(lastMask);
        }

        INDArray lg = logits.view(N, experts);
        Nd4j.gemm(x, gate.value(), lg, false, true, 1.0, 0.0);             // (N, E) logits = x W_g^T
        route(lg.data(), N);

        INDArray xs = xAll.view(NK, C), h = hAll.view(NK, D), gh = ghAll.view(NK, D);
        INDArray g = gAll.view(NK, 1);
        DataBuffer gb = g.data();
        for (int r = 0; r < N; r++) {
            for (int k = 0; k < topK; k++) gb.put(slotIndex[k][r], slotGate[r * topK + k]);
        }
        Nd4j.pullRows(xd, xs, 1, rowsAll);                                 // (NK, C) X_e, expert by expert
        bank.forward(xs, offset, h);                                       // (NK, D) H_e = s X_e A_e^T B_e^T
        gh.assign(h).muliColumnVector(g);                                  // (NK, D) g H
        INDArray out = slotOut.view(N, D);
        for (int k = 0; k < topK; k++) {                                   // slots in ascending expert index
            Nd4j.pullRows(gh, out, 1, slotIndex[k]);
            y.addi(out);
        }
        statistics(N, NK, h);
    }

    /** Softmax, top-k, renormalised weights, and the expert-ordered layout of the routed slots. */
    private void route(DataBuffer lb, int N) {
        for (int r = 0; r < N; r++) {
            int base = r * experts;
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) max = Math.max(max, lb.getDouble(base + e));
            double sum = 0;
            for (int e = 0; e < experts; e++) {
                p[base + e] = Math.exp(lb.getDouble(base + e) - max);
                sum += p[base + e];
            }
            for (int e = 0; e < experts; e++) p[base + e] /= sum;
            int s0 = r * topK;
            for (int k = 0; k < topK; k++) {
                int best = -1;
                for (int e = 0; e < experts; e++) {
                    if (chosen(s0, k, e)) continue;
                    if (best < 0 || p[base + e] > p[base + best]) best = e; // strict: ties go to the lower index
                }
                slotExpert[s0 + k] = best;
            }
            Arrays.sort(slotExpert, s0, s0 + topK);
            double s = 0;
            for (int k = 0; k < topK; k++) s += p[base + slotExpert[s0 + k]];
            slotSum[r] = s;
            for (int k = 0; k < topK; k++) slotGate[s0 + k] = p[base + slotExpert[s0 + k]] / s;
        }
        Arrays.fill(perExpert, 0);
        for (int i = 0; i < N * topK; i++) perExpert[slotExpert[i]]++;
        offset[0] = 0;
        for (int e = 0; e < experts; e++) offset[e + 1] = offset[e] + perExpert[e];
        int[] fill = offset.clone();
        for (int r = 0; r < N; r++) {
            for (int k = 0; k < topK; k++) {
                int pos = fill[slotExpert[r * topK + k]]++;
                rowsAll[pos] = r;
                slotIndex[k][r] = pos;
            }
        }
    }

    private boolean chosen(int s0, int k, int e) {
        for (int j = 0; j < k; j++) if (slotExpert[s0 + j] == e) return true;
        return false;
    }

    /** Routing statistics and, when training, the auxiliary losses (real rows only). */
    private void statistics(int N, int NK, INDArray h) {
        realRows = 0;
        for (int r = 0; r < N; r++) {
            real[r] = rowMask == null || rowMask[r] != 0f;
            if (real[r]) realRows++;
        }
        Arrays.fill(routedReal, 0);
        Arrays.fill(gateMass, 0);
        double entropy = 0;
        for (int r = 0; r < N; r++) {
            if (!real[r]) continue;
            for (int k = 0; k < topK; k++) routedReal[slotExpert[r * topK + k]]++;
            for (int e = 0; e < experts; e++) {
                double pe = p[r * experts + e];
                gateMass[e] += pe;
                if (pe > 0) entropy -= pe * Math.log(pe);
            }
        }
        double bal = 0;
        for (int e = 0; e < experts; e++) {
            if (realRows > 0) {
                gateMass[e] /= realRows;
                balanceF[e] = routedReal[e] / ((double) realRows * topK);
            } else {
                balanceF[e] = 0;
            }
            bal += balanceF[e] * gateMass[e];
        }
        balanceLoss = experts * bal;
        gateEntropy = realRows > 0 ? entropy / realRows : 0;

        INDArray realRow = realAll.view(1, NK);
        DataBuffer rb = realRow.data();
        for (int i = 0; i < NK; i++) rb.put(i, real[rowsAll[i]] ? 1.0 : 0.0);
        INDArray mean = means.view(experts, dOut());
        mean.assign(0.0);
        for (int e = 0; e < experts; e++) {
            if (routedReal[e] == 0) continue;
            INDArray seg = realRow.get(NDArrayIndex.all(), NDArrayIndex.interval(offset[e], offset[e] + perExpert[e]));
            Nd4j.gemm(seg, rows(h, offset[e], perExpert[e]), rows(mean, e, 1), false, false, 1.0 / routedReal[e], 0.0);
        }
        cosines(mean.data());

        if (!training) {
            contrastiveLoss = Double.NaN;
            clPositions = new int[0];
            return;
        }
        contrastiveLoss = sampleAndContrast(NK, h);
        auxLoss += (balanceWeight * balanceLoss + contrastiveWeight * contrastiveLoss) * lossWeight;
    }

    private void cosines(DataBuffer mb) {
        long d = dOut();
        double[] norm = new double[experts];
        for (int e = 0; e < experts; e++) {
            double s = 0;
            for (long c = 0; c < d; c++) s += mb.getDouble(e * d + c) * mb.getDouble(e * d + c);
            norm[e] = Math.sqrt(s);
        }
        for (int i = 0; i < experts; i++) {
            for (int j = 0; j < experts; j++) {
                if (norm[i] == 0 || norm[j] == 0) {
                    cosine[i][j] = 0;
                    continue;
                }
                double s = 0;
                for (long c = 0; c < d; c++) s += mb.getDouble(i * d + c) * mb.getDouble(j * d + c);
                cosine[i][j] = s / (norm[i] * norm[j]);
            }
        }
    }

    /**
     * Samples at most M real rows per expert (all of them, drawing nothing, when there are at most
     * M; otherwise a partial Fisher-Yates shuffle from this module's stream, then sorted), and
     * returns L_cl over their features, keeping dL_cl/dH for backward.
     */
    private double sampleAndContrast(int NK, INDArray h) {
        int[] candidates = new int[NK];
        int[] picked = new int[NK];
        int[] labels = new int[NK];
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
        INDArray f = features.view(s, dOut());
        Nd4j.pullRows(h, f, 1, clPositions);                               // (S, D) sampled H rows
        return contrastive.lossAndGradient(f, Arrays.copyOf(labels, s), temperature, dFeatures.view(s, dOut()));
    }

    @Override
    public void backward(INDArray dy, INDArray dx, boolean accumulate) {
        base.backward(dy, dx, accumulate);
        int N = (int) dy.size(0);
        if (N != n) throw new IllegalStateException(name() + ": backward of " + N + " rows after a forward of " + n);
        if (N == 0) return;
        int NK = N * topK;
        long C = dIn(), D = dOut();
        INDArray h = hAll.view(NK, D), xs = xAll.view(NK, C);
        INDArray g = gAll.view(NK, 1);

        INDArray dys = dyAll.view(NK, D);
        Nd4j.pullRows(dy, dys, 1, rowsAll);                                // (NK, D) dy[R_e], expert by expert
        INDArray dg = dgAll.view(NK);
        ghAll.view(NK, D).assign(dys).muli(h).sum(dg, 1);                  // (NK) dg = dy . H
        INDArray dh = dys.muliColumnVector(g);                             // (NK, D) dH = g dy
        double clWeight = auxScale * contrastiveWeight * lossWeight;
        if (lastTraining && clPositions.length > 0 && clWeight != 0) {
            DataBuffer db = dh.data(), fb = dFeatures.view(clPositions.length, D).data();
            for (int i = 0; i < clPositions.length; i++) {
                for (long c = 0; c < D; c++) {
                    long at = clPositions[i] * D + c;
                    db.put(at, db.getDouble(at) + clWeight * fb.getDouble(i * D + c));
                }
            }
        }
        bank.backward(dh, offset, xs);                                     // dA_e, dB_e; X_e's buffer now holds dX_e
        INDArray dxa = dxAdapter.view(N, C), tmp = slotIn.view(N, C);
        Nd4j.pullRows(xs, dxa, 1, slotIndex[0]);                           // (N, C) sum of dX over slots, ascending expert
        for (int k = 1; k < topK; k++) {
            Nd4j.pullRows(xs, tmp, 1, slotIndex[k]);
            dxa.addi(tmp);
        }
        if (lastMask != null) dxa.muli(lastMask);
        dx.addi(dxa);

        DataBuffer dgb = dg.data();
        INDArray dl = dlogits.view(N, experts);
        DataBuffer dlb = dl.data();
        double balWeight = lastTraining && realRows > 0 ? auxScale * balanceWeight * lossWeight * experts / realRows : 0;
        double[] dp = new double[experts];
        for (int r = 0; r < N; r++) {
            Arrays.fill(dp, 0);
            int s0 = r * topK;
            double dot = 0;
            for (int k = 0; k < topK; k++) dot += dgb.getDouble(slotIndex[k][r]) * slotGate[s0 + k];
            for (int k = 0; k < topK; k++) dp[slotExpert[s0 + k]] = (dgb.getDouble(slotIndex[k][r]) - dot) / slotSum[r];
            if (real[r] && balWeight != 0) for (int e = 0; e < experts; e++) dp[e] += balWeight * balanceF[e];
            double pdp = 0;
            for (int e = 0; e < experts; e++) pdp += p[r * experts + e] * dp[e];
            for (int e = 0; e < experts; e++) dlb.put(r * experts + e, p[r * experts + e] * (dp[e] - pdp)); // softmax backward
        }
        Nd4j.gemm(dl, lastX, gate.grad(), true, false, 1.0, 1.0);          // (E, C) dW_g += dlogits^T x
        Nd4j.gemm(dl, gate.value(), dx, false, false, 1.0, 1.0);           // (N, C) dx += dlogits W_g
    }
}
