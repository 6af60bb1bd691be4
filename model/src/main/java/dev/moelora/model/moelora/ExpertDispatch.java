package dev.moelora.model.moelora;

import dev.moelora.model.nn.HostRows;
import dev.moelora.model.nn.Slab;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

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
    private Slab hAll;                  // (NK, D) H_e, and when the router dropped slots the zero row after them
    private Slab ghAll, dyAll;          // (NK, D) dy * H and dH in backward
    private Slab dgAll;                 // (NK)
    private Slab dxAdapter;             // (N, C)
    private double[] gSlot = new double[0];  // (NK) g of each routed slot, rounded to the model's dtype
    // Three Java rows of max(C, D) for the row loops, of the model's dtype: Java has no generic
    // primitive arrays, so each loop has a float body (training) and a double one (gradient checks).
    private final boolean single;
    private float[][] fRow = new float[3][0];
    private double[][] dRow = new double[3][0];

    ExpertDispatch(String name, DataType dtype, long dIn, long dOut, TopKRouter router) {
        this.name = name;
        this.dtype = dtype;
        if (dtype != DataType.FLOAT && dtype != DataType.DOUBLE) {
            throw new IllegalArgumentException(name + ": MoELoRA runs in FLOAT or DOUBLE, got " + dtype);
        }
        this.single = dtype == DataType.FLOAT;
        this.dIn = dIn;
        this.dOut = dOut;
        this.router = router;
    }

    private void ensureCapacity(long rows) {
        if (rows <= capacityRows) return;
        long c = dIn, d = dOut, nk = rows * router.topK();
        String m = name + ".";
        xAll = new Slab(m + "moe_x", dtype, (nk + 1) * c);               // + the zero row of dropped slots
        hAll = new Slab(m + "moe_h", dtype, (nk + 1) * d);              // + the zero row of dropped slots
        ghAll = new Slab(m + "moe_gh", dtype, nk * d);
        dyAll = new Slab(m + "moe_dy", dtype, nk * d);
        dgAll = new Slab(m + "moe_dg", dtype, nk);
        dxAdapter = new Slab(m + "moe_dx", dtype, rows * c);
        gSlot = new double[(int) nk];
        int width = (int) Math.max(c, d);
        if (single) fRow = new float[3][width];
        else dRow = new double[3][width];
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
        Rows.gather(xd, router.rowsAll(), xs);
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

    /** y (N, D) += g H, the slots of a row in ascending expert index, in one Java pass over the rows. */
    void combine(INDArray y) {
        int N = router.rows(), K = router.topK(), NK = slots(), D = (int) dOut;
        HostRows ys = new HostRows(y), hs = new HostRows(withZeroRow(hAll, dOut));
        double[] slotGate = router.slotGate();
        for (int r = 0; r < N; r++) {
            if (single) ys.read(r, fRow[0]); else ys.read(r, dRow[0]);
            for (int k = 0; k < K; k++) {
                int pos = router.slotIndex(k)[r];                          // a dropped slot reads the zero row
                double g = single ? (float) slotGate[r * K + k] : slotGate[r * K + k];   // g in the model's dtype
                if (pos < NK) gSlot[pos] = g;
                if (single) {
                    float[] yr = fRow[0], hr = fRow[1];
                    float gf = (float) g;
                    hs.read(pos, hr);
                    for (int c = 0; c < D; c++) yr[c] = yr[c] + hr[c] * gf;
                } else {
                    double[] yr = dRow[0], hr = dRow[1];
                    hs.read(pos, hr);
                    for (int c = 0; c < D; c++) yr[c] = yr[c] + hr[c] * g;
                }
            }
            if (single) ys.write(r, fRow[0]); else ys.write(r, dRow[0]);
        }
    }

    /**
     * dH (NK, D) = g dy[R_e], from dy (N, D); keeps dg = dy . H for {@link #dg()}. The gather and
     * the products run in one Java pass over the slots; the sum over D stays ND4J's reduction.
     */
    INDArray combineBackward(INDArray dy) {
        int NK = slots(), D = (int) dOut;
        int[] rowsAll = router.rowsAll();
        INDArray dys = dyAll.view(NK, dOut), gh = ghAll.view(NK, dOut);
        HostRows dyr = new HostRows(dy), hs = new HostRows(expertOutputs()), ghs = new HostRows(gh), dhs = new HostRows(dys);
        for (int pos = 0; pos < NK; pos++) {
            double g = gSlot[pos];
            if (single) {
                float[] d = fRow[0], h = fRow[1], out = fRow[2];
                float gf = (float) g;
                dyr.read(rowsAll[pos], d);
                hs.read(pos, h);
                for (int c = 0; c < D; c++) out[c] = d[c] * h[c];
                ghs.write(pos, out);                                       // dy * H, for dg
                for (int c = 0; c < D; c++) out[c] = d[c] * gf;
                dhs.write(pos, out);                                       // dH = g dy
            } else {
                double[] d = dRow[0], h = dRow[1], out = dRow[2];
                dyr.read(rowsAll[pos], d);
                hs.read(pos, h);
                for (int c = 0; c < D; c++) out[c] = d[c] * h[c];
                ghs.write(pos, out);
                for (int c = 0; c < D; c++) out[c] = d[c] * g;
                dhs.write(pos, out);
            }
        }
        gh.sum(dgAll.view(NK), 1);                                         // (NK) dg = dy . H
        return dys;
    }

    /** (NK) dL/dg of the last {@link #combineBackward}, in slot layout. */
    DataBuffer dg() {
        return dgAll.view(slots()).data();
    }

    /** (N, C) the experts' dX_e summed per row over its slots, ascending expert, after the bank's backward: one Java pass. */
    INDArray gatherBackward() {
        int N = router.rows(), K = router.topK(), C = (int) dIn;
        INDArray dxa = dxAdapter.view(N, dIn);
        HostRows xs = new HostRows(withZeroRow(xAll, dIn)), out = new HostRows(dxa);
        for (int r = 0; r < N; r++) {
            int first = router.slotIndex(0)[r];                            // a dropped slot reads the zero row
            if (single) {
                float[] acc = fRow[0], xr = fRow[1];
                xs.read(first, acc);
                for (int k = 1; k < K; k++) {
                    xs.read(router.slotIndex(k)[r], xr);
                    for (int c = 0; c < C; c++) acc[c] = acc[c] + xr[c];
                }
                out.write(r, acc);
            } else {
                double[] acc = dRow[0], xr = dRow[1];
                xs.read(first, acc);
                for (int k = 1; k < K; k++) {
                    xs.read(router.slotIndex(k)[r], xr);
                    for (int c = 0; c < C; c++) acc[c] = acc[c] + xr[c];
                }
                out.write(r, acc);
            }
        }
        return dxa;
    }
}
