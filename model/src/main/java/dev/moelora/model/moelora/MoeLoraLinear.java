package dev.moelora.model.moelora;

import dev.moelora.model.nn.InputDropout;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.nn.Slab;
import dev.moelora.model.optim.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * MoELoRA (Luo et al., arXiv 2402.12851) as a decorator over one frozen layer: a token-level top-k
 * router over E low-rank experts, with the Switch balance loss and a supervised-contrastive loss on
 * the experts' outputs computed here, in forward, and back-propagated here, in backward. This
 * single-process module is the reference the expert-parallel runtime must equal bit for bit. It
 * never touches the base layer's weights.
 *
 * <p>It composes its parts in order and holds what is between them: dropout, the gate GEMM, and
 * the buffers of both. Each part keeps its own formulas: {@link TopKRouter} (softmax, top-k, g,
 * the slot layout), {@link ExpertDispatch} (gather X_e, combine y += g H), the {@link ExpertBank}
 * ({@link LowRankExpert}: H_e, dA_e, dB_e, dX_e), {@link RoutingStatistics} and
 * {@link AuxiliaryLosses} (L_bal, L_cl).
 *
 * <p>Dimensions: N = B*T rows, C = dIn, D = dOut, E experts, K = top-k, R = r_e, NK = N*K routed
 * slots. Forward, on x (N, C):
 * <pre>
 * y      = base(x)                                    // (N, D)
 * logits = x W_g^T                                    // (N, E)  the gate sees x without dropout
 * p, K_n, g, R_e from the logits                      // TopKRouter.forward
 * X_e    = drop(x)[R_e]                               // (n_e, C)  ExpertDispatch.gather
 * H_e    = s_e (X_e A_e^T) B_e^T,  s_e = alpha / r_e  // (n_e, D)  by the expert bank, here or remote
 * y_n   += g_ne H_e,n  for e in K_n                   // ExpertDispatch.combine
 * statistics; L_bal; L_cl when training               // RoutingStatistics, AuxiliaryLosses.forward
 * </pre>
 * Backward, given dy (N, D), after base.backward, in reverse:
 * <pre>
 * dg, dH_e = g_ne dy[R_e]                             // ExpertDispatch.combineBackward
 * dH_e  += aux lambda_cl / modules dL_cl/dH_e         // AuxiliaryLosses.contrastiveBackward
 * dA_e, dB_e, dX_e                                    // by the expert bank
 * dx    += mask * (dX_e summed over a row's slots)    // ExpertDispatch.gatherBackward, then dropout
 * dlogit from dg and dp_bal                           // TopKRouter.backward, AuxiliaryLosses.balanceBackward
 * dW_g  += dlogit^T x;  dx += dlogit W_g              // (E, C), (N, C)
 * </pre>
 * where modules is the number of adapted modules and aux the auxiliary-loss scale
 * (1 / gradient-accumulation steps). The dx of a row is: the base layer's, then its experts'
 * (summed over its slots in ascending expert index, times the dropout mask), then the gate's.
 *
 * <p>Determinism: every reduction has a fixed order (experts in index order, rows ascending,
 * slots per row in ascending expert index), the routing math runs in Java in double, and the only
 * randomness is this module's two streams (the dropout masks here, the feature sampling in
 * {@link AuxiliaryLosses}), both restarted by {@link #reseed}. Dropless by default; with
 * {@code adapter.capacity-factor} c > 0 a training forward lets each expert take at most
 * C = ceil(c k N_real / E) routed slots ({@link TopKRouter} says which drop). Evaluation and
 * generation forwards are always dropless, so a row's output never depends on the rows batched
 * with it there.
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
    private final int experts;
    private final Parameter gate;     // (E, C)
    private final ExpertBank bank;    // the E experts: here, or in expert actors
    private final InputDropout dropout;  // on the experts' input only: the gate sees x
    private final TopKRouter router;
    private final ExpertDispatch dispatch;
    private final RoutingStatistics statistics;
    private final AuxiliaryLosses losses;
    private boolean training = true;
    private float[] rowMask;
    private double auxScale = 1;
    private final double capacityFactor;

    private long capacityRows;
    private Slab logits, dlogits;            // (N, E)
    private INDArray lastX;                  // (N, C) the input

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
        this.capacityFactor = config.capacityFactor();
        if (gateInit.size(0) != experts || gateInit.size(1) != base.dIn()) {
            throw new IllegalArgumentException(base.name() + ": the gate is " + java.util.Arrays.toString(gateInit.shape())
                    + ", expected [" + experts + ", " + base.dIn() + "]");
        }
        DataType dt = gateInit.dataType();
        this.gate = new Parameter(base.name() + ".moe_gate", gateInit);
        this.bank = bank;
        this.dropout = new InputDropout(base.name() + ".moe", config.dropout(), dropoutSeed(seed));
        this.router = new TopKRouter(experts, config.topK());
        this.dispatch = new ExpertDispatch(base.name(), dt, base.dIn(), base.dOut(), router);
        this.statistics = new RoutingStatistics(base.name(), dt, experts, base.dOut(), router);
        this.losses = new AuxiliaryLosses(base.name(), dt, base.dOut(), config, lossWeight, seed, router, statistics);
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
        losses.reseed(seed);
        dropout.reseed(dropoutSeed(seed));
    }

    private static long dropoutSeed(long seed) {
        return seed ^ 0x9E3779B97F4A7C15L;
    }

    /** The auxiliary loss added by the training forwards since the last call, then 0. */
    double takeAuxiliaryLoss() {
        return losses.takeAuxiliaryLoss();
    }

    /** The experts of every row's slots in the last forward, (N, K) ascending per row: a copy. */
    int[] routing() {
        return router.routing();
    }

    /** Which of every row's slots (N, K) the capacity dropped in the last forward: a copy. */
    boolean[] droppedSlots() {
        return router.droppedSlots();
    }

    /** The gate weights g of every row's slots in the last forward, (N, K): a copy. */
    double[] slotWeights() {
        return router.slotWeights();
    }

    /** How many features the last training forward sampled for the contrastive loss. */
    int sampledFeatures() {
        return losses.sampledFeatures();
    }

    RoutingStats stats() {
        return statistics.snapshot(name(), losses.balanceLoss(), losses.contrastiveLoss());
    }

    /** C = ceil(c k N_real / E), at least 1, in a training forward with a capacity factor c > 0; else 0 (no limit). */
    private int capacity(int realRows) {
        if (!training || capacityFactor == 0) return 0;
        return (int) Math.max(1, Math.ceil(capacityFactor * router.topK() * realRows / experts));
    }

    private void ensureCapacity(long rows) {
        if (rows <= capacityRows) return;
        DataType dt = gate.value().dataType();
        String m = name() + ".";
        logits = new Slab(m + "moe_logits", dt, rows * experts);
        dlogits = new Slab(m + "moe_dlogits", dt, rows * experts);
        capacityRows = rows;
    }

    @Override
    public void forward(INDArray x, INDArray y) {
        base.forward(x, y);
        int N = (int) x.size(0);
        if (rowMask != null && rowMask.length != N) {
            throw new IllegalArgumentException(name() + ": the row mask has " + rowMask.length + " rows, the forward " + N);
        }
        ensureCapacity(N);
        router.resize(N);
        lastX = x;
        if (N == 0) return;

        INDArray xd = dropout.forward(x, training);                        // (N, C) expert input, one mask shared by a row's experts
        INDArray lg = logits.view(N, experts);
        Nd4j.gemm(x, gate.value(), lg, false, true, 1.0, 0.0);             // (N, E) logits = x W_g^T
        boolean[] real = statistics.markReal(rowMask, N);
        router.forward(lg.data(), real, capacity(statistics.realRows())); // p, top-k, g, slot layout (less what the capacity drops)
        INDArray xs = dispatch.gather(xd);                                 // (NK, C) X_e, expert by expert
        INDArray h = dispatch.expertOutputs();
        bank.forward(xs, router.offset(), h);                              // (NK, D) H_e = s X_e A_e^T B_e^T
        dispatch.combine(y);                                               // (N, D) y += g H
        statistics.forward(h);                                             // real rows, counts, gate mass, entropy, cosines
        losses.forward(training, h);                                       // L_bal; L_cl and the auxiliary loss when training
    }

    @Override
    public void backward(INDArray dy, INDArray dx, boolean accumulate) {
        base.backward(dy, dx, accumulate);
        int N = (int) dy.size(0);
        if (N != router.rows()) throw new IllegalStateException(name() + ": backward of " + N + " rows after a forward of " + router.rows());
        if (N == 0) return;

        INDArray dh = dispatch.combineBackward(dy);                        // (NK, D) dH = g dy[R_e]; dg = dy . H
        losses.contrastiveBackward(dh, auxScale);                          // + dL_cl/dH on the sampled rows
        bank.backward(dh, router.offset(), dispatch.expertInputGradients()); // dA_e, dB_e; dX_e into X_e's buffer
        dx.addi(dropout.backward(dispatch.gatherBackward()));               // (N, C) dX summed over a row's slots, ascending expert

        INDArray dl = dlogits.view(N, experts);
        router.backward(dispatch.dg(), statistics.real(), losses.balanceBackward(auxScale), dl.data()); // (N, E) dlogits
        Nd4j.gemm(dl, lastX, gate.grad(), true, false, 1.0, 1.0);          // (E, C) dW_g += dlogits^T x
        Nd4j.gemm(dl, gate.value(), dx, false, false, 1.0, 1.0);           // (N, C) dx += dlogits W_g
    }
}
