package dev.moelora.model.instruct;

import dev.moelora.model.llama.DecoderBatch;
import java.util.List;

/**
 * Several instruction sequences as one right-padded decoder batch and the loss mask that selects
 * their response tokens. One sequence per row: rows are never packed with several examples,
 * because the decoder's attention mask is causal over the whole row (a second example in a row
 * would attend to the first). Padding is masked out of attention and of the loss, so its id only
 * has to be a valid token.
 *
 * @param lossMask (B*T) 1 at response tokens (EOS included), 0 at prompt tokens and padding
 */
public record InstructionBatch(DecoderBatch batch, float[] lossMask) {
    /** Pads every sequence on the right to the longest one's length with {@code padId}. */
    public static InstructionBatch of(List<TokenizedInstruction> examples, int padId) {
        if (examples.isEmpty()) throw new IllegalArgumentException("an instruction batch needs at least one example");
        int B = examples.size(), T = 0;
        for (TokenizedInstruction e : examples) T = Math.max(T, e.length());
        int[] ids = new int[B * T];
        float[] mask = new float[B * T], lossMask = new float[B * T];
        for (int b = 0; b < B; b++) {
            TokenizedInstruction e = examples.get(b);
            for (int t = 0; t < T; t++) {
                int i = b * T + t;
                boolean real = t < e.length();
                ids[i] = real ? e.ids()[t] : padId;
                mask[i] = real ? 1f : 0f;
                lossMask[i] = real && t >= e.promptLength() ? 1f : 0f;
            }
        }
        return new InstructionBatch(new DecoderBatch(B, T, ids, mask), lossMask);
    }

    /** Real (non-padding) tokens. */
    public int tokens() {
        int n = 0;
        for (float m : batch.mask()) if (m != 0f) n++;
        return n;
    }
}
