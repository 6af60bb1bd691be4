package dev.moelora.model.moelora;

import dev.moelora.model.optim.Parameter;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The E experts of one MoELoRA module, seen from the module that routes to them: it hands over
 * every expert's rows at once and gets their outputs back. In one process the experts are here
 * ({@link LocalExpertBank}); in the expert-parallel runtime they live in expert actors on other
 * threads or machines and this is where the dispatch happens. The routed rows are laid out expert
 * by expert: expert e owns rows [offset[e], offset[e + 1]) of every (NK, ...) buffer.
 */
public interface ExpertBank {
    /** The experts' parameters held in this process, A_e then B_e in expert order; empty when they live elsewhere. */
    List<Parameter> parameters();

    /**
     * H_e = s B_e A_e X_e for every expert with rows.
     *
     * @param xs     (NK, C) X_e of every expert; must stay unchanged until {@link #backward}
     * @param offset (E + 1) row ranges per expert
     * @param h      (NK, D) out
     */
    void forward(INDArray xs, int[] offset, INDArray h);

    /**
     * Adds each expert's gradient for dH_e and writes dX_e.
     *
     * @param dh  (NK, D) dL/dH_e, expert by expert
     * @param dxs (NK, C) out: dL/dX_e; it may be the forward's xs buffer
     */
    void backward(INDArray dh, int[] offset, INDArray dxs);
}
