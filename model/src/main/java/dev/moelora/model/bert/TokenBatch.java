package dev.moelora.model.bert;

/**
 * B sequences padded to T tokens, flattened row-major (row = b * T + t).
 *
 * @param ids     (B*T) token ids, padding included
 * @param typeIds (B*T) token type (segment) ids
 * @param mask    (B*T) 1 for real tokens, 0 for padding
 */
public record TokenBatch(int batch, int tokens, int[] ids, int[] typeIds, float[] mask) {
    public TokenBatch {
        int n = batch * tokens;
        if (ids.length != n || typeIds.length != n || mask.length != n) {
            throw new IllegalArgumentException("a batch of " + batch + " x " + tokens + " needs " + n
                    + " ids, type ids and mask entries; got " + ids.length + ", " + typeIds.length + ", " + mask.length);
        }
    }

    public int rows() {
        return batch * tokens;
    }
}
