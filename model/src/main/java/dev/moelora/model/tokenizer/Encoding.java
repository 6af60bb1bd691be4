package dev.moelora.model.tokenizer;

/**
 * The token ids of one encoded input and the segment (token type) of each, special tokens included.
 *
 * <p>Unpadded on purpose: padding depends on the batch, so the batching code owns it. Arrays are
 * shared, not copied, so a caller must not mutate them; record equality compares array identity.
 *
 * @param ids token ids, {@code (T)}
 * @param typeIds 0 for the first segment, 1 for the second of a pair, {@code (T)}
 */
public record Encoding(int[] ids, int[] typeIds) {

    public Encoding {
        if (ids.length != typeIds.length) {
            throw new IllegalArgumentException(
                    "ids has " + ids.length + " entries but typeIds has " + typeIds.length + "; expected one type id per token");
        }
    }

    public int length() {
        return ids.length;
    }
}
