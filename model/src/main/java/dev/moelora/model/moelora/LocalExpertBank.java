package dev.moelora.model.moelora;

import dev.moelora.model.nn.Slab;
import dev.moelora.model.optim.Parameter;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The experts of one module in the module's own process: the single-process reference. Holds
 * A_e and B_e as trainable parameters and the forward's h1 for backward; the math is
 * {@link LowRankExpert}'s. Buffers grow with the batch and are reused.
 */
final class LocalExpertBank implements ExpertBank {
    private final String name;
    private final Parameter[] a;  // E x (R, C)
    private final Parameter[] b;  // E x (D, R)
    private final double scale;
    private final int rank;
    private long capacity;
    private Slab h1All, dh1All;   // (NK, R)
    private INDArray lastXs;      // (NK, C) the forward's rows

    LocalExpertBank(String name, INDArray[] aInit, INDArray[] bInit, double scale) {
        this.name = name;
        this.scale = scale;
        this.rank = (int) aInit[0].size(0);
        this.a = new Parameter[aInit.length];
        this.b = new Parameter[bInit.length];
        for (int e = 0; e < aInit.length; e++) {
            a[e] = new Parameter(MoeLora.aName(name, e), aInit[e]);
            b[e] = new Parameter(MoeLora.bName(name, e), bInit[e]);
        }
    }

    Parameter a(int e) { return a[e]; }
    Parameter b(int e) { return b[e]; }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>();
        for (int e = 0; e < a.length; e++) {
            out.add(a[e]);
            out.add(b[e]);
        }
        return out;
    }

    @Override
    public void forward(INDArray xs, int[] offset, INDArray h) {
        long nk = xs.size(0);
        if (nk > capacity) {
            var dt = xs.dataType();
            h1All = new Slab(name + ".moe_h1", dt, nk * rank);
            dh1All = new Slab(name + ".moe_dh1", dt, nk * rank);
            capacity = nk;
        }
        lastXs = xs;
        INDArray h1 = h1All.view(nk, rank);
        for (int e = 0; e < a.length; e++) {
            int n = offset[e + 1] - offset[e];
            if (n == 0) continue;
            LowRankExpert.forward(Rows.range(xs, offset[e], n), a[e].value(), b[e].value(), scale, Rows.range(h1, offset[e], n), Rows.range(h, offset[e], n));
        }
    }

    @Override
    public void backward(INDArray dh, int[] offset, INDArray dxs) {
        long nk = dh.size(0);
        INDArray h1 = h1All.view(nk, rank), dh1 = dh1All.view(nk, rank);
        for (int e = 0; e < a.length; e++) {
            int n = offset[e + 1] - offset[e];
            if (n == 0) continue;
            LowRankExpert.backward(Rows.range(dh, offset[e], n), Rows.range(lastXs, offset[e], n), Rows.range(h1, offset[e], n), a[e].value(), b[e].value(),
                    scale, a[e].grad(), b[e].grad(), Rows.range(dh1, offset[e], n), Rows.range(dxs, offset[e], n));
        }
    }
}
