package dev.moelora.model.train;

import dev.moelora.model.optim.Parameter;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Gradient accumulation with one fixed arithmetic: every micro-batch's gradient is computed from
 * zero into its own slot, and the step's gradient is slot 0 + slot 1 + ... in micro-batch order.
 * The expert-parallel runtime reduces the same way (a micro-batch per router, in any arrival
 * order), so a run gives the same bits whether its micro-batches ran here one after another or on
 * several routers at once. Slots are allocated once.
 */
public final class MicroBatchGradients {
    private final List<Parameter> params;
    private final INDArray[][] slots; // (microBatches, parameters)

    public MicroBatchGradients(List<Parameter> params, int microBatches) {
        this.params = List.copyOf(params);
        this.slots = new INDArray[microBatches][this.params.size()];
        for (int m = 0; m < microBatches; m++) {
            for (int i = 0; i < this.params.size(); i++) {
                INDArray g = this.params.get(i).grad();
                slots[m][i] = Nd4j.zeros(g.dataType(), g.shape());
            }
        }
    }

    public int microBatches() { return slots.length; }

    /** Slot {@code micro}'s buffer for parameter {@code index}: where another router's gradient is received. */
    public INDArray slot(int micro, int index) {
        return slots[micro][index];
    }

    /** Moves the parameters' current gradients (one micro-batch's, computed from zero) into slot {@code micro}. */
    public void capture(int micro) {
        for (int i = 0; i < params.size(); i++) {
            INDArray g = params.get(i).grad();
            slots[micro][i].assign(g);
            g.assign(0.0);
        }
    }

    /** Sets every parameter's gradient to the sum of the first {@code count} slots, in slot order. */
    public void reduce(int count) {
        for (int i = 0; i < params.size(); i++) {
            INDArray g = params.get(i).grad();
            g.assign(slots[0][i]);
            for (int m = 1; m < count; m++) g.addi(slots[m][i]);
        }
    }

    /** The same reduction for one tensor whose micro-batch gradients sit in {@code slots[0..count)}. */
    public static void reduce(INDArray[] slots, int count, INDArray out) {
        out.assign(slots[0]);
        for (int m = 1; m < count; m++) out.addi(slots[m]);
    }
}
