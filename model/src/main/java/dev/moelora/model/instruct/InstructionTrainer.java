package dev.moelora.model.instruct;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.NextTokenLoss;
import dev.moelora.model.nn.Slab;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.train.OptimizerStep;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The instruction-tuning loop of a decoder: micro-batches of tokenized instructions, next-token
 * loss on response tokens only, gradient accumulation, global-norm clipping, the learning-rate
 * schedule and AdamW over the adapters' parameters (any family: LoRA, Tied-LoRA, MoELoRA, whose
 * routing sees the padding mask and whose auxiliary losses join the task loss). It reports every
 * step to a listener and does no I/O. The decoder's weights are never trained.
 *
 * <p>Per micro-batch the loss is the mean over its counted targets (Hugging Face's causal-LM loss
 * with -100 labels); the step's loss is the mean over its micro-batches. Buffers are sized once
 * for batch-size x the longest sequence.
 */
public final class InstructionTrainer {
    private final LlamaDecoder decoder;
    private final Adapters adapters;
    private final List<TokenizedInstruction> examples;
    private final TrainConfig config;
    private final int padId;
    private final OptimizerStep optimizerStep;
    private final InstructionOrder order;
    private Slab rowScale;                           // (B*T, 1) NextTokenLoss scratch, grown only for longer evaluation batches
    private int step;

    /**
     * @param adapters already applied to {@code decoder}
     * @param padId    a valid token id for padding (masked out wherever it appears)
     */
    public InstructionTrainer(LlamaDecoder decoder, Adapters adapters, List<TokenizedInstruction> examples, TrainConfig config,
                              boolean groupByLength, int padId) {
        if (adapters.parameters().isEmpty()) throw new IllegalArgumentException("instruction tuning needs an adapter with trainable parameters");
        this.decoder = decoder;
        this.adapters = adapters;
        this.examples = List.copyOf(examples);
        this.config = config;
        this.padId = padId;
        this.optimizerStep = new OptimizerStep(adapters, adapters.parameters(), config);
        int[] lengths = this.examples.stream().mapToInt(TokenizedInstruction::length).toArray();
        this.order = new InstructionOrder(lengths, config.seed(), groupByLength, config.batchSize());
        int maxT = 0;
        for (int l : lengths) maxT = Math.max(maxT, l);
        int maxB = Math.max(config.batchSize(), config.evalBatchSize());
        decoder.reserve(maxB, maxT);
        this.rowScale = new Slab("rowScale", decoder.dataType(), (long) maxB * maxT);
    }

    public AdamW optimizer() { return optimizerStep.optimizer(); }
    public List<Parameter> parameters() { return optimizerStep.parameters(); }
    public InstructionOrder order() { return order; }
    public int step() { return step; }

    /** Continues from a saved state: the step and the data cursor (the optimizer is restored by its owner). */
    public void resume(int step, int epoch, int position) {
        if (step < 0 || step > config.steps()) throw new IllegalArgumentException("resume step " + step + " is outside [0, " + config.steps() + "]");
        this.step = step;
        order.seek(epoch, position);
    }

    /** Runs the remaining steps up to {@code until} (exclusive upper bound on the step count). */
    public void run(int until, Trainer.Listener listener) {
        adapters.setTraining(true);
        for (; step < Math.min(until, config.steps()); step++) {
            listener.onStep(optimizerStep.run(step, m -> {
                InstructionBatch batch = InstructionBatch.of(pick(order.next(config.batchSize())), padId);
                return new OptimizerStep.Outcome(forwardLoss(batch, true), batch.tokens());
            }));
        }
        adapters.setTraining(false);
        adapters.setRowMask(null); // generation runs other row counts
    }

    /** Forward, loss and, when training, backward with the loss scaled by 1 / gradient accumulation. */
    private double forwardLoss(InstructionBatch batch, boolean backward) {
        var b = batch.batch();
        adapters.setRowMask(b.mask());
        INDArray logits = decoder.forward(b);
        if (rowScale.capacity() < b.rows()) rowScale = new Slab("rowScale", decoder.dataType(), b.rows());
        double loss = NextTokenLoss.forwardBackward(logits, b, batch.lossMask(), logits, rowScale.view(b.rows(), 1));
        if (backward) {
            if (config.gradAccum() > 1) logits.muli(1.0 / config.gradAccum());
            decoder.backward(logits);
        }
        return loss;
    }

    /** Targets NextTokenLoss counts: response tokens after the first position of their row. */
    private List<TokenizedInstruction> pick(int[] indices) {
        List<TokenizedInstruction> out = new ArrayList<>(indices.length);
        for (int i : indices) out.add(examples.get(i));
        return out;
    }
}
