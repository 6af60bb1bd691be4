package dev.moelora.model.moelora;

import java.util.Arrays;
import org.nd4j.linalg.api.buffer.DataBuffer;

/**
 * The token-level top-k router of one MoELoRA module: from the gate's logits to each row's k
 * experts, their weights g and the expert-ordered layout of the routed slots that every (NK, ...)
 * buffer of the module shares; and back, from dL/dg (plus the balance loss's dL/dp) to
 * dL/dlogits. It is pure Java arithmetic in double on the logits as the model's dtype gave them.
 * It never reads x, the experts or a random stream, and it never drops a token (there is no
 * capacity limit): the routing is a function of the logits alone.
 *
 * <p>Dimensions: N rows, E experts, K = top-k, NK = N*K routed slots. Forward, on logits (N, E):
 * <pre>
 * p      = softmax(logits) per row                    // (N, E)
 * K_n    = the k largest p_n, ties to the lower index; kept sorted by expert index
 * g_nk   = p_nk / S_n, S_n = sum_{j in K_n} p_nj      // (N, K)  S_n summed in expert-index order
 * R_e    = { n : e in K_n }, rows ascending           // expert e owns slots [offset[e], offset[e + 1])
 * </pre>
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
    private int[][] slotIndex;              // K x (N): where slot k of row n sits among the routed slots
    private final int[] perExpert, offset;  // (E), (E + 1)

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

    /** (NK) the source row of each routed slot, expert by expert, rows ascending. */
    int[] rowsAll() { return rowsAll; }

    /** (N) where slot k of each row sits among the routed slots. */
    int[] slotIndex(int k) { return slotIndex[k]; }

    /** (E + 1) expert e owns the routed slots [offset[e], offset[e + 1]). */
    int[] offset() { return offset; }

    /** (E) routed slots per expert. */
    int[] perExpert() { return perExpert; }

    /** The experts of every row's slots in the last forward, (N, K) ascending per row: a copy. */
    int[] routing() {
        return Arrays.copyOf(slotExpert, n * topK);
    }

    /** The gate weights g of every row's slots in the last forward, (N, K): a copy. */
    double[] slotWeights() {
        return Arrays.copyOf(slotGate, n * topK);
    }

    /** Softmax, top-k, renormalised weights, and the expert-ordered layout of the routed slots, from logits (N, E). */
    void forward(DataBuffer lb) {
        int N = n;
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

    /**
     * Writes dL/dlogits (N, E) into {@code dlb}.
     *
     * @param dgb    (NK) dL/dg in slot layout
     * @param real   (N) the rows dp_bal applies to
     * @param dpBal  (E) dp_bal, or null when the balance loss adds nothing
     */
    void backward(DataBuffer dgb, boolean[] real, double[] dpBal, DataBuffer dlb) {
        double[] dp = new double[experts];
        for (int r = 0; r < n; r++) {
            Arrays.fill(dp, 0);
            int s0 = r * topK;
            double dot = 0;
            for (int k = 0; k < topK; k++) dot += dgb.getDouble(slotIndex[k][r]) * slotGate[s0 + k];
            for (int k = 0; k < topK; k++) dp[slotExpert[s0 + k]] = (dgb.getDouble(slotIndex[k][r]) - dot) / slotSum[r];
            if (dpBal != null && real[r]) for (int e = 0; e < experts; e++) dp[e] += dpBal[e];
            double pdp = 0;
            for (int e = 0; e < experts; e++) pdp += p[r * experts + e] * dp[e];
            for (int e = 0; e < experts; e++) dlb.put(r * experts + e, p[r * experts + e] * (dp[e] - pdp)); // softmax backward
        }
    }
}
