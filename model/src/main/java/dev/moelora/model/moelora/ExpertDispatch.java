package dev.moelora.model.moelora;

import dev.moelora.model.nn.Slab;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Moves rows between token order and the router's expert order: gathers every expert's input
 * rows into one (NK, C) buffer for the expert bank, and combines the bank's outputs back into y,
 * weighted by g; backward gives dg for the router, dH for the bank, and dX summed back per row.
 * It owns the module's slot buffers, grown when the batch grows. It never decides a routing (that
 * is {@link TopKRouter}'s) or computes an expert's output (that is the {@link ExpertBank}'s), and it
 * never changes the order of a sum: the slots of a row are always taken in ascending expert index.
 *
 * <p>Dimensions: N rows, C = dIn, D = dOut, K = top-k, NK = N*K routed slots, n_e rows of expert e.
 * Forward, on drop(x) (N, C) and H (NK, D) from the bank:
 * <pre>
 * X_e    = drop(x)[R_e]                               // (n_e, C) rows ascending; all experts in one (NK, C) buffer
 * y_n   += g_ne H_e,n  for e in K_n, experts in ascending index order
 * </pre>
 * g is stored in the model's dtype (from the router's double) before it multiplies H.
 * Backward, given dy (N, D):
 * <pre>
 * dg_ne  = dy_n . H_e,n                               // (NK)
 * dH_e   = g_ne dy[R_e]                               // (n_e, D), to which the contrastive term is added
 * dxe_n  = sum of dX_e,n over the slots of n, ascending expert   // (N, C), before the dropout mask
 * </pre>
 * NK counts the routed slots; a slot the router's capacity dropped is not among them and reads a
 * zero row kept one past them, so it adds nothing to y and nothing to dx.
 */
final class ExpertDispatch {
    private final String name;
    private final DataType dtype;
    private final long dIn, dOut;
    private final TopKRouter router;
    private long capacityRows;
    private Slab xAll;                  // (NK, C) X_e of every expert; the bank's backward overwrites it with dX_e
    private Slab hAll, ghAll, dyAll;    // (NK, D) H_e; g H, then dy * H in backward; dy[R_e], then dH in place
    private Slab gAll, dgAll;           // (NK)
    private Slab slotOut;               // (N, D)
    private Slab slotIn, dxAdapter;     // (N, C)

    ExpertDispatch(String name, DataType dtype, long dIn, long dOut, TopKRouter router) {
        this.name = name;
        this.dtype = dtype;
        this.dIn = dIn;
        this.dOut = dOut;
        this.router = router;
    }

    private void ensureCapacity(long rows) {
        if (rows <= capacityRows) return;
        long c = dIn, d = dOut, nk = rows * router.topK();
        String m = name + ".";
        xAll = new Slab(m + "moe_x", dtype, (nk + 1) * c);               // + the zero row of dropped slots
        hAll = new Slab(m + "moe_h", dtype, nk * d);
        ghAll = new Slab(m + "moe_gh", dtype, (nk + 1) * d);
        dyAll = new Slab(m + "moe_dy", dtype, nk * d);
        gAll = new Slab(m + "moe_g", dtype, nk);
        dgAll = new Slab(m + "moe_dg", dtype, nk);
        slotOut = new Slab(m + "moe_slot_out", dtype, rows * d);
        slotIn = new Slab(m + "moe_slot_in", dtype, rows * c);
        dxAdapter = new Slab(m + "moe_dx", dtype, rows * c);
        capacityRows = rows;
    }

    private int slots() {
        return router.routed();
    }

    /** The routed slots' rows of {@code slab} (NK, width), and when the router dropped slots the zero row after them. */
    private INDArray withZeroRow(Slab slab, long width) {
        int nk = slots();
        if (!router.dropped()) return slab.view(nk, width);
        INDArray all = slab.view(nk + 1, width);
        all.getRow(nk).assign(0.0);
        return all;
    }

    /** X_e (NK, C) of every expert, expert by expert, from the experts' input xd (N, C), for the routing of the last forward. */
    INDArray gather(INDArray xd) {
        ensureCapacity(router.rows());
        INDArray xs = xAll.view(slots(), dIn);
        Nd4j.pullRows(xd, xs, 1, router.rowsAll());
        return xs;
    }

    /** (NK, D) where the bank writes H_e, expert by expert, and combine reads them. */
    INDArray expertOutputs() {
        return hAll.view(slots(), dOut);
    }

    /** (NK, C) where the bank writes dX_e in backward: the gathered X_e's buffer. */
    INDArray expertInputGradients() {
        return xAll.view(slots(), dIn);
    }

    /** y (N, D) += g H, the slots of a row in ascending expert index. */
    void combine(INDArray y) {
        int N = router.rows(), K = router.topK(), NK = slots();
        INDArray h = expertOutputs(), gh = ghAll.view(NK, dOut);
        INDArray g = gAll.view(NK, 1);
        DataBuffer gb = g.data();
        double[] slotGate = router.slotGate();
        for (int r = 0; r < N; r++) {
            for (int k = 0; k < K; k++) if (router.slotIndex(k)[r] < NK) gb.put(router.slotIndex(k)[r], slotGate[r * K + k]);
        }
        gh.assign(h).muliColumnVector(g);                                  // (NK, D) g H
        INDArray ghz = withZeroRow(ghAll, dOut);
        INDArray out = slotOut.view(N, dOut);
        for (int k = 0; k < K; k++) {                                      // slots in ascending expert index
            Nd4j.pullRows(ghz, out, 1, router.slotIndex(k));
            y.addi(out);
        }
    }

    /** dH (NK, D) = g dy[R_e], from dy (N, D); keeps dg = dy . H for {@link #dg()}. */
    INDArray combineBackward(INDArray dy) {
        int NK = slots();
        INDArray h = expertOutputs(), g = gAll.view(NK, 1);
        INDArray dys = dyAll.view(NK, dOut);
        Nd4j.pullRows(dy, dys, 1, router.rowsAll());                       // (NK, D) dy[R_e], expert by expert
        INDArray dg = dgAll.view(NK);
        ghAll.view(NK, dOut).assign(dys).muli(h).sum(dg, 1);               // (NK) dg = dy . H
        return dys.muliColumnVector(g);                                    // (NK, D) dH = g dy
    }

    /** (NK) dL/dg of the last {@link #combineBackward}, in slot layout. */
    DataBuffer dg() {
        return dgAll.view(slots()).data();
    }

    /** (N, C) the experts' dX_e summed per row over its slots, ascending expert, after the bank's backward. */
    INDArray gatherBackward() {
        int N = router.rows();
        INDArray xs = withZeroRow(xAll, dIn);
        INDArray dxa = dxAdapter.view(N, dIn), tmp = slotIn.view(N, dIn);
        Nd4j.pullRows(xs, dxa, 1, router.slotIndex(0));
        for (int k = 1; k < router.topK(); k++) {
            Nd4j.pullRows(xs, tmp, 1, router.slotIndex(k));
            dxa.addi(tmp);
        }
        return dxa;
    }
}
