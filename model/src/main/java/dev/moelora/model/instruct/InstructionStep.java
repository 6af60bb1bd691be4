package dev.moelora.model.instruct;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.NextTokenLoss;
import dev.moelora.model.train.OptimizerStep;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One micro-batch of instruction tuning on a decoder, the same code in the single-process trainer
 * and on a router of the expert-parallel runtime: the sequences at the given indices right-padded
 * into a batch, the adapters told which rows are real, forward, the next-token loss on response
 * tokens (the mean over its counted targets; the LM head runs on those rows only), backward with
 * the loss scaled by 1 / micro-batches.
 * Buffers are sized once for the micro-batch size x the longest sequence. It never steps the
 * optimizer and never reads the order of the examples.
 */
public final class InstructionStep {
    private final LlamaDecoder decoder;
    private final Adapters adapters;
    private final List<TokenizedInstruction> examples;
    private final int padId;
    private final int microBatches;

    /**
     * @param adapters     already applied to {@code decoder}
     * @param padId        a valid token id for padding (masked out wherever it appears)
     * @param microBatches micro-batches per optimizer step (the gradients' scale)
     * @param maxBatch     the largest micro-batch (sequences)
     */
    public InstructionStep(LlamaDecoder decoder, Adapters adapters, List<TokenizedInstruction> examples, int padId, int microBatches,
                           int maxBatch) {
        this.decoder = decoder;
        this.adapters = adapters;
        this.examples = List.copyOf(examples);
        this.padId = padId;
        this.microBatches = microBatches;
        int maxT = 0;
        for (TokenizedInstruction e : this.examples) maxT = Math.max(maxT, e.length());
        decoder.reserve(maxBatch, maxT);
    }

    public List<TokenizedInstruction> examples() { return examples; }

    /** Forward, loss and backward of the sequences at {@code indices}; returns the task loss and the batch's tokens. */
    public OptimizerStep.Outcome run(int[] indices) {
        List<TokenizedInstruction> picked = new ArrayList<>(indices.length);
        for (int i : indices) {
            if (i < 0 || i >= examples.size()) throw new IllegalArgumentException("example index " + i + " is outside the " + examples.size() + " sequences");
            picked.add(examples.get(i));
        }
        InstructionBatch batch = InstructionBatch.of(picked, padId);
        var b = batch.batch();
        adapters.setRowMask(b.mask());
        int[] counted = NextTokenLoss.countedRows(b, batch.lossMask());
        INDArray logits = decoder.forward(b, counted);                    // the LM head on the response rows only
        double loss = NextTokenLoss.forwardBackwardRows(logits, b, counted, logits);
        if (microBatches > 1 && counted.length > 0) logits.muli(1.0 / microBatches);
        decoder.backward(logits);
        return new OptimizerStep.Outcome(loss, batch.tokens());
    }
}
