package dev.moelora.model.train;

/**
 * The order in which a run reads its training examples, as indices: a seeded shuffle per epoch
 * (encoder tasks: {@link ExampleSampler}; decoder instructions:
 * {@code dev.moelora.model.instruct.InstructionOrder}). The cursor (epoch, position) is all a
 * resumed run needs; a coordinator draws micro-batches from it and names them to its routers by
 * these indices. It holds no example itself.
 */
public interface ExampleOrder {
    /** The next {@code batchSize} example indices, continuing into the next epoch when this one ends. */
    int[] nextIndices(int batchSize);

    /** How many examples one epoch visits. */
    int size();

    int epoch();

    int position();

    /** Moves to a cursor saved by an earlier run. */
    void seek(int epoch, int position);
}
