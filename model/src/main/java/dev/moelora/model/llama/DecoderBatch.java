package dev.moelora.model.llama;

/**
 * B right-padded sequences of T tokens for a decoder, flattened row-major (row = b * T + t).
 * Positions are 0..T-1 in every sequence, so padding must come after the real tokens (Hugging
 * Face's right padding); left padding would shift the positions and is refused.
 *
 * @param ids  (B*T) token ids, padding included
 * @param mask (B*T) 1 for real tokens, 0 for padding
 */
public record DecoderBatch(int batch, int tokens, int[] ids, float[] mask) {
    public DecoderBatch {
        int n = batch * tokens;
        if (batch < 1 || tokens < 1 || ids.length != n || mask.length != n) {
            throw new IllegalArgumentException("a batch of " + batch + " x " + tokens + " needs " + n
                    + " ids and mask entries; got " + ids.length + " and " + mask.length);
        }
        for (int b = 0; b < batch; b++) {
            for (int t = 1; t < tokens; t++) {
                if (mask[b * tokens + t] != 0f && mask[b * tokens + t - 1] == 0f) {
                    throw new IllegalArgumentException("sequence " + b + " has a real token at position " + t
                            + " after padding; pad on the right");
                }
            }
        }
    }

    public int rows() {
        return batch * tokens;
    }
}
