package dev.moelora.model.moelora;

import dev.moelora.model.nn.HostValues;
import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataBuffer;

/**
 * The token-level top-k router of one MoELoRA module: from the gate's logits to each row's k
 * experts, their weights g and the expert-ordered layout of the routed slots that every (NK, ...)
 * buffer of the module shares; and back, from dL/dg (plus the balance loss's dL/dp) to
 * dL/dlogits. It is pure Java arithmetic in double on the logits as the model's dtype gave them.
 * It never reads x, the experts or a random stream: the routing is a function of the logits (and,
 * with a capacity, of which rows are real).
 *
 * <p>Dimensions: N rows, E experts, K = top-k, NK = N*K routed slots. Forward, on logits (N, E):
 * <pre>
 * p      = softmax(logits) per row                    // (N, E)
 * K_n    = the k largest p_n, ties to the lower index; kept sorted by expert index
 * g_nk   = p_nk / S_n, S_n = sum_{j in K_n} p_nj      // (N, K)  S_n summed in expert-index order
 * R_e    = { n : e in K_n }, rows ascending           // expert e owns slots [offset[e], offset[e + 1])
 * </pre>
 * With a capacity C (a training forward with {@code adapter.capacity-factor} c > 0,
 * C = ceil(c k N_real / E), at least 1), an expert chosen by more than C rows keeps C of them:
 * real rows before padding rows, then the highest p_ne, ties to the lower row; the other slots
 * are dropped. A dropped slot keeps its g (the kept slots are not renormalised) but has no H: it
 * adds nothing to y, its dg is 0, it is not among R_e, and its slot index is the one past the
 * routed slots (where the dispatch keeps a zero row). The choice of K_n and g, and so the balance
 * loss's counts, are those before the drop. Without a capacity nothing is dropped.
 *
 * Backward, given dg (NK) in slot layout and dp_bal (E), the balance loss's dL/dp of a real row:
 * <pre>
 * dp_nj  = (dg_nj - sum_{k in K_n} dg_nk g_nk) / S_n  for j in K_n, else 0;  + dp_bal,j on real rows
 * dlogit = p (dp - &lt;p, dp&gt;)                            // (N, E)
 * </pre>
 * Every sum runs in a fixed order: experts ascending within a row, slots of a row in ascending
 * expert index, routed slots expert by expert with rows ascending.
 */
final class TopKRouter {
    private final int experts, topK;
    private int n = -1;                     // N of the last forward
    private double[] p;                     // (N, E)
    private int[] slotExpert;               // (N, K) ascending expert index per row
    private double[] slotGate;              // (N, K) g
    private double[] slotSum;               // (N) S_n
    private int[] rowsAll;                  // (NK) source row of each routed slot, expert by expert
    private int[] routedRows;               // rowsAll, or its first routed() entries when slots dropped
    private int[][] slotIndex;              // K x (N): where slot k of row n sits among the routed slots; routed() if dropped
    private boolean[] slotDropped;          // (N, K) dropped by the capacity
    private int[] candidates;               // (N) an expert's slots while the capacity picks
    private final int[] perExpert, offset;  // (E), (E + 1) kept slots
    private double[] dgValues = new double[0], dlogitValues = new double[0];   // (NK), (N, E) host copies in backward
    private int droppedReal;                // real rows' slots dropped by the capacity in the last forward

    TopKRouter(int experts, int topK) {
        this.experts = experts;
        this.topK = topK;
        this.perExpert = new int[experts];
        this.offset = new int[experts + 1];
    }

    /** Sizes the routing for a forward of N rows, even an empty one: small arrays, re-allocated when N changes. */
    void resize(int rows) {
        if (rows == n) return;
        n = rows;
        p = new double[rows * experts];
        slotExpert = new int[rows * topK];
        slotGate = new double[rows * topK];
        slotSum = new double[rows];
        rowsAll = new int[rows * topK];
        slotIndex = new int[topK][rows];
        slotDropped = new boolean[rows * topK];
        candidates = new int[rows];
    }

    /** N of the last forward; -1 before the first. */
    int rows() { return n; }

    int topK() { return topK; }

    /** p (N, E) of the last forward, row-major. */
    double[] p() { return p; }

    /** The experts of every row's slots (N, K), ascending per row. */
    int[] slotExpert() { return slotExpert; }

    /** g (N, K), in the order of {@link #slotExpert()}. */
    double[] slotGate() { return slotGate; }

    /** (NK) the source row of each routed slot, expert by expert, rows ascending: exactly {@link #routed()} long. */
    int[] rowsAll() { return routedRows; }

    /** (N) where slot k of each row sits among the routed slots. */
    int[] slotIndex(int k) { return slotIndex[k]; }

    /** (E + 1) expert e owns the routed slots [offset[e], offset[e + 1]). */
    int[] offset() { return offset; }

    /** (E) routed (kept) slots per expert. */
    int[] perExpert() { return perExpert; }

    /** Routed slots of the last forward: NK, less the dropped ones; also the slot index of a dropped slot. */
    int routed() { return offset[experts]; }

    /** Whether the last forward dropped any slot. */
    boolean dropped() { return routed() < n * topK; }

    /** Slots of real rows the capacity dropped in the last forward. */
    int droppedReal() { return droppedReal; }

    /** The experts of every row's slots in the last forward, (N, K) ascending per row: a copy. */
    int[] routing() {
        return Arrays.copyOf(slotExpert, n * topK);
    }

    /** Which of every row's slots (N, K) the capacity dropped in the last forward: a copy. */
    boolean[] droppedSlots() {
        return Arrays.copyOf(slotDropped, n * topK);
    }

    /** The gate weights g of every row's slots in the last forward, (N, K): a copy. */
    double[] slotWeights() {
        return Arrays.copyOf(slotGate, n * topK);
    }

    /** Dropless: softmax, top-k, renormalised weights, and the expert-ordered layout of the routed slots, from logits (N, E). */
    void forward(DataBuffer lb) {
        forward(lb, null, 0);
    }

    /**
     * As {@link #forward(DataBuffer)}, each expert keeping at most {@code capacity} slots (0: no
     * limit); {@code real} (N) says which rows are real (null: all).
     */
    void forward(DataBuffer lb, boolean[] real, int capacity) {
        int N = n;
        double[] logit = p;                                               // the logits are read into p, then replaced by it
        HostValues.read(lb, logit, N * experts);
        for (int r = 0; r < N; r++) {
            int base = r * experts;
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) max = Math.max(max, logit[base + e]);
            double sum = 0;
            for (int e = 0; e < experts; e++) {
                p[base + e] = Math.exp(logit[base + e] - max);
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
        Arrays.fill(slotDropped, 0, N * topK, false);
        droppedReal = 0;
        if (capacity > 0) for (int e = 0; e < experts; e++) dropOverCapacity(e, real, capacity);
        Arrays.fill(perExpert, 0);
        for (int i = 0; i < N * topK; i++) if (!slotDropped[i]) perExpert[slotExpert[i]]++;
        offset[0] = 0;
        for (int e = 0; e < experts; e++) offset[e + 1] = offset[e] + perExpert[e];
        int[] fill = offset.clone();
        for (int r = 0; r < N; r++) {
            for (int k = 0; k < topK; k++) {
                if (slotDropped[r * topK + k]) {
                    slotIndex[k][r] = offset[experts];
                    continue;
                }
                int pos = fill[slotExpert[r * topK + k]]++;
                rowsAll[pos] = r;
                slotIndex[k][r] = pos;
            }
        }
        routedRows = dropped() ? Arrays.copyOf(rowsAll, routed()) : rowsAll;
    }

    /** Marks the slots of expert e beyond the capacity as dropped: it keeps real rows first, then the highest p, then the lower row. */
    private void dropOverCapacity(int e, boolean[] real, int capacity) {
        int c = 0;
        for (int i = 0; i < n * topK; i++) if (slotExpert[i] == e) candidates[c++] = i;
        if (c <= capacity) return;
        Integer[] order = new Integer[c];
        for (int i = 0; i < c; i++) order[i] = candidates[i];
        Arrays.sort(order, (x, y) -> {
            int rx = x / topK, ry = y / topK;
            boolean realX = real == null || real[rx], realY = real == null || real[ry];
            if (realX != realY) return realX ? -1 : 1;
            int byP = Double.compare(p[ry * experts + e], p[rx * experts + e]);
            return byP != 0 ? byP : Integer.compare(rx, ry);
        });
        for (int i = capacity; i < c; i++) {
            slotDropped[order[i]] = true;
            if (real == null || real[order[i] / topK]) droppedReal++;
        }
    }

    /** dL/dg of slot {@code slot} (at {@code pos} among the routed slots): 0 for a dropped slot, which has no H. */
    private double dg(double[] dg, int slot, int pos) {
        return slotDropped[slot] ? 0.0 : dg[pos];
    }

    private boolean chosen(int s0, int k, int e) {
        for (int j = 0; j < k; j++) if (slotExpert[s0 + j] == e) return true;
        return false;
    }

    /**
     * Writes dL/dlogits (N, E) into {@code dlb}.
     *
     * @param dgb    (NK) dL/dg in slot layout
     * @param real   (N) the rows dp_bal applies to
     * @param dpBal  (E) dp_bal, or null when the balance loss adds nothing
     */
    void backward(DataBuffer dgb, boolean[] real, double[] dpBal, DataBuffer dlb) {
        double[] dp = new double[experts];
        if (dgValues.length < routed()) dgValues = new double[routed()];
        if (dlogitValues.length < n * experts) dlogitValues = new double[n * experts];
        double[] dgv = dgValues, dl = dlogitValues;
        HostValues.read(dgb, dgv, routed());
        for (int r = 0; r < n; r++) {
            Arrays.fill(dp, 0);
            int s0 = r * topK;
            double dot = 0;
            for (int k = 0; k < topK; k++) dot += dg(dgv, s0 + k, slotIndex[k][r]) * slotGate[s0 + k];
            for (int k = 0; k < topK; k++) dp[slotExpert[s0 + k]] = (dg(dgv, s0 + k, slotIndex[k][r]) - dot) / slotSum[r];
            if (dpBal != null && real[r]) for (int e = 0; e < experts; e++) dp[e] += dpBal[e];
            double pdp = 0;
            for (int e = 0; e < experts; e++) pdp += p[r * experts + e] * dp[e];
            for (int e = 0; e < experts; e++) dl[r * experts + e] = p[r * experts + e] * (dp[e] - pdp); // softmax backward
        }
        HostValues.write(dl, dlb, n * experts);
    }
}
