package dev.moelora.model.instruct;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.train.OptimizerStep;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import java.util.List;

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
    private final Adapters adapters;
    private final TrainConfig config;
    private final OptimizerStep optimizerStep;
    private final InstructionOrder order;
    private final InstructionStep micro;
    private int step;

    /**
     * @param adapters already applied to {@code decoder}
     * @param padId    a valid token id for padding (masked out wherever it appears)
     */
    public InstructionTrainer(LlamaDecoder decoder, Adapters adapters, List<TokenizedInstruction> examples, TrainConfig config,
                              boolean groupByLength, int padId) {
        if (adapters.parameters().isEmpty()) throw new IllegalArgumentException("instruction tuning needs an adapter with trainable parameters");
        this.adapters = adapters;
        this.config = config;
        this.optimizerStep = new OptimizerStep(adapters, adapters.parameters(), config);
        this.order = order(examples, config, groupByLength);
        this.micro = new InstructionStep(decoder, adapters, examples, padId, config.gradAccum(), Math.max(config.batchSize(), config.evalBatchSize()));
    }

    /** The order a run with these settings reads its sequences in (a coordinator draws the same micro-batches from it). */
    public static InstructionOrder order(List<TokenizedInstruction> examples, TrainConfig config, boolean groupByLength) {
        return new InstructionOrder(examples.stream().mapToInt(TokenizedInstruction::length).toArray(), config.seed(), groupByLength,
                config.batchSize());
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
            listener.onStep(optimizerStep.run(step, m -> micro.run(order.nextIndices(config.batchSize()))));
        }
        adapters.setTraining(false);
        adapters.setRowMask(null); // generation runs other row counts
    }
}
