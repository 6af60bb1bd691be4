package dev.moelora.experts;

import dev.moelora.model.moelora.LowRankExpert;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.train.MicroBatchGradients;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Everything one expert owns, for every adapted module (and so every layer): A_e and B_e, their
 * AdamW state, one gradient slot per micro-batch of a step, and the rows the routers sent it,
 * kept from forward to backward. The math is {@link LowRankExpert}'s, the gradient reduction
 * {@link MicroBatchGradients}'s: the same code the single-process reference runs, so a run with
 * its experts here equals one with them in the module's process bit for bit.
 *
 * <p>Not thread-safe by itself: the data-plane thread writes incoming rows into the buffers it
 * hands out ({@link #input}) and then tells the expert's actor, which alone computes.
 * Buffers grow to the largest rows seen and are then reused: after the first steps nothing is
 * allocated. A backward must match the forward before it in its slot and module (same rows, once):
 * anything else would compute on rows that are not the forward's, so it is refused.
 */
final class ExpertState {
    private final int expert;
    private final List<MoeLora.ModuleShape> modules;
    private final double scale;
    private final int rank;
    private final Parameter[] a;          // per module (R, C)
    private final Parameter[] b;          // per module (D, R)
    private final List<Parameter> params; // A_0, B_0, A_1, B_1, ...: the order of the names reported
    private final INDArray[][] slotA;     // (slots, modules) (R, C) dA of each micro-batch
    private final INDArray[][] slotB;     // (slots, modules) (D, R) dB of each micro-batch
    private final AdamW optimizer;
    private final Rows[][] x;             // (slots, modules) (n, C) the forward's rows; backward overwrites them with dX
    private final long[][] forwarded;     // (slots, modules) rows of the forward a backward may still take; -1 when none
    private final Rows[][] h1;            // (slots, modules) (n, R)
    private final Rows[][] dh;            // (slots, modules) (n, D) dL/dH received
    private final Rows out;               // (n, D) H of any module, sent right after it is computed
    private final Rows dh1;               // (n, R) scratch

    /** A growable float32 buffer of rows with a little-endian byte view of its memory for the wire. */
    static final class Rows {
        private final String name;
        private final long cols;
        private DataBuffer data;
        private ByteBuffer bytes;
        private long capacity; // elements

        Rows(String name, long cols) {
            this.name = name;
            this.cols = cols;
        }

        /** (rows, cols) over the leading elements. */
        INDArray view(long rows) {
            return matrix(rows, cols);
        }

        /** (rows, columns) over the leading elements, for a buffer shared by modules of different widths. */
        INDArray matrix(long rows, long columns) {
            ensure(rows * columns);
            return Nd4j.create(data, new long[]{rows, columns}, new long[]{columns, 1}, 0, 'c', DataType.FLOAT);
        }

        /** The first rows x cols floats as bytes, position 0. */
        ByteBuffer bytes(long rows) {
            return elements(rows * cols);
        }

        /** The first n floats as bytes, position 0. */
        ByteBuffer elements(long n) {
            ensure(n);
            ByteBuffer v = bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            v.limit((int) (n * Float.BYTES));
            return v;
        }

        private void ensure(long n) {
            if (n <= capacity) return;
            long grown = Math.max(n, capacity * 5 / 4);
            if (grown * Float.BYTES > Integer.MAX_VALUE) throw new IllegalArgumentException(name + ": " + n + " floats exceed 2 GiB");
            data = Nd4j.createBuffer(DataType.FLOAT, Math.max(1, grown), true);
            bytes = data.asNio().order(ByteOrder.LITTLE_ENDIAN);
            capacity = grown;
        }
    }

    ExpertState(int expert, List<MoeLora.ModuleShape> modules, MoeLoraConfig config, long adapterSeed, double weightDecay, int slots) {
        if (expert < 0 || expert >= config.experts()) {
            throw new IllegalArgumentException("expert " + expert + " is outside [0, adapter.experts = " + config.experts() + ")");
        }
        this.expert = expert;
        this.modules = List.copyOf(modules);
        this.scale = config.scale();
        this.rank = config.expertRank();
        int m = modules.size();
        a = new Parameter[m];
        b = new Parameter[m];
        List<MoeLora.ModuleInit> inits = MoeLora.initialise(modules, config, adapterSeed, DataType.FLOAT);
        List<Parameter> all = new ArrayList<>();
        for (int i = 0; i < m; i++) {
            String name = modules.get(i).name();
            a[i] = new Parameter(MoeLora.aName(name, expert), inits.get(i).a()[expert]);
            b[i] = new Parameter(MoeLora.bName(name, expert), inits.get(i).b()[expert]);
            all.add(a[i]);
            all.add(b[i]);
        }
        params = List.copyOf(all);
        optimizer = AdamW.withDefaults(params, weightDecay);
        slotA = new INDArray[slots][m];
        slotB = new INDArray[slots][m];
        x = new Rows[slots][m];
        forwarded = new long[slots][m];
        h1 = new Rows[slots][m];
        dh = new Rows[slots][m];
        for (int s = 0; s < slots; s++) {
            for (int i = 0; i < m; i++) {
                MoeLora.ModuleShape shape = modules.get(i);
                slotA[s][i] = Nd4j.zeros(DataType.FLOAT, rank, shape.dIn());
                slotB[s][i] = Nd4j.zeros(DataType.FLOAT, shape.dOut(), rank);
                forwarded[s][i] = -1;
                x[s][i] = new Rows("expert " + expert + " " + shape.name() + " x", shape.dIn());
                h1[s][i] = new Rows("expert " + expert + " " + shape.name() + " h1", rank);
                dh[s][i] = new Rows("expert " + expert + " " + shape.name() + " dh", shape.dOut());
            }
        }
        out = new Rows("expert " + expert + " out", 1);
        dh1 = new Rows("expert " + expert + " dh1", rank);
    }

    int expert() { return expert; }
    int modules() { return modules.size(); }
    int slots() { return x.length; }
    List<Parameter> parameters() { return params; }

    /** The AdamW state of {@link #parameters()}: what a checkpoint saves with them. */
    AdamW optimizer() { return optimizer; }

    /** Columns of a module's input (forward: C) or incoming gradient (backward: D). */
    long inputColumns(int module, boolean backward) {
        return backward ? modules.get(module).dOut() : modules.get(module).dIn();
    }

    /**
     * Where the data plane writes a module's incoming rows: x for a forward, dL/dH for a backward.
     * Null when the slot or module does not exist (the frame is then dropped as unexpected).
     */
    ByteBuffer input(int slot, int module, long rows, boolean backward) {
        if (slot < 0 || slot >= slots() || module < 0 || module >= modules()) return null;
        return (backward ? dh : x)[slot][module].bytes(rows);
    }

    /** H = s B A X for the rows in slot's x buffer; returns the bytes of H (n, D) to send. */
    ByteBuffer forward(int slot, int module, long rows) {
        long d = modules.get(module).dOut();
        INDArray xs = x[slot][module].view(rows), h = out.matrix(rows, d);
        LowRankExpert.forward(xs, a[module].value(), b[module].value(), scale, h1[slot][module].view(rows), h);
        forwarded[slot][module] = rows;
        return out.elements(rows * d);
    }

    /**
     * Adds the rows' gradient to slot's dA and dB; returns the bytes of dX (n, C) to send.
     *
     * @throws IllegalStateException unless the last forward of this slot and module sent the same
     *     number of rows and no backward has taken it yet (nothing is changed then)
     */
    ByteBuffer backward(int slot, int module, long rows) {
        long forwardRows = forwarded[slot][module];
        if (forwardRows != rows) {
            throw new IllegalStateException("expert " + expert + ", module " + modules.get(module).name() + ", micro-batch slot " + slot
                    + ": a backward of " + rows + " rows, but " + (forwardRows < 0
                    ? "no forward ran in this slot since its last backward" : "the forward sent " + forwardRows));
        }
        INDArray xs = x[slot][module].view(rows);
        LowRankExpert.backward(dh[slot][module].view(rows), xs, h1[slot][module].view(rows), a[module].value(), b[module].value(),
                scale, slotA[slot][module], slotB[slot][module], dh1.view(rows), xs);
        forwarded[slot][module] = -1; // x now holds dX
        return x[slot][module].bytes(rows);
    }

    /**
     * Sums the first {@code microBatches} slots into the gradients, in slot order; returns each
     * parameter's gradient norm in {@link #parameters()} order.
     */
    double[] reduce(int microBatches) {
        if (microBatches < 1 || microBatches > slots()) {
            throw new IllegalArgumentException("expert " + expert + ": " + microBatches + " micro-batches, " + slots() + " gradient slots");
        }
        INDArray[] column = new INDArray[microBatches];
        for (int i = 0; i < modules(); i++) {
            for (int s = 0; s < microBatches; s++) column[s] = slotA[s][i];
            MicroBatchGradients.reduce(column, microBatches, a[i].grad());
            for (int s = 0; s < microBatches; s++) column[s] = slotB[s][i];
            MicroBatchGradients.reduce(column, microBatches, b[i].grad());
        }
        double[] norms = new double[params.size()];
        for (int p = 0; p < norms.length; p++) norms[p] = AdamW.norm(params.get(p));
        return norms;
    }

    /** Clips by the global factor, takes an AdamW step and clears every gradient slot for the next step. */
    void apply(double lr, double clipFactor) {
        if (clipFactor < 1) optimizer.scaleGradients(clipFactor);
        optimizer.step(lr);
        for (int s = 0; s < slots(); s++) {
            for (int i = 0; i < modules(); i++) {
                slotA[s][i].assign(0.0);
                slotB[s][i].assign(0.0);
            }
        }
    }
}
