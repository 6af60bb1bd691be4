package dev.moelora.proto.frame;

/**
 * Why {@link TensorFrameReceiver} dropped a message (or, for {@link #INCOMPLETE}, a partly received
 * tensor). Each kind is counted and logged once, with the details of its first occurrence.
 *
 * <p>Must never grow a kind that stands for "some other error": every drop names its cause.
 */
public enum FrameError {
    /**
     * The message ends inside its length prefix, its header, or before the payload its header implies;
     * or its Aeron fragments do not make a whole message: a gap in the stream positions between two of
     * them, a continuation fragment whose BEGIN did not arrive, or a new BEGIN before its END.
     */
    TRUNCATED,
    /** Negative header length, header longer than {@link FrameLayout#MAX_HEADER_BYTES}, header not parseable, or chunk index/count out of range. */
    MALFORMED_HEADER,
    /** dtype is not FLOAT32. */
    UNSUPPORTED_DTYPE,
    /** run_id is not a run the consumer knows. */
    UNKNOWN_RUN,
    /** Negative or oversized shape, or a payload longer than (or at an offset other than) what shape, chunk_count and chunk_offset imply. */
    SHAPE_MISMATCH,
    /** The consumer has no destination for this tensor, or does not await this FAILURE frame. */
    UNEXPECTED,
    /** A FAILURE frame with a payload, shape, dtype, chunking or CRC, or without failure text; or a frame of another direction that carries failure text. */
    INVALID_FAILURE,
    /** The consumer's destination has fewer bytes remaining than the tensor's shape needs. */
    DESTINATION_TOO_SMALL,
    /** A chunk other than the next one expected on its publication (chunks arrive 0, 1, 2, ... per tensor). */
    OUT_OF_ORDER,
    /** The payload's CRC32C differs from payload_crc32c. */
    CRC_MISMATCH,
    /** A tensor with some chunks accepted was abandoned: a new chunk 0 or a dropped message arrived before its last chunk. Counts tensors, not messages. */
    INCOMPLETE
}
