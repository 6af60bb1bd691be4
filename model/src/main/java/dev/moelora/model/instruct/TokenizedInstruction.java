package dev.moelora.model.instruct;

import java.util.Arrays;

/**
 * One training sequence: BOS, the prompt, the response and, when it fitted, EOS, as token ids.
 * Tokens at positions {@code promptLength} and later are the targets the loss counts; the prompt
 * (BOS included) is context only.
 *
 * @param ids          (T) token ids
 * @param promptLength how many leading tokens are prompt; at least 1 and less than T, so that
 *                     there is at least one target
 */
public record TokenizedInstruction(int[] ids, int promptLength) {
    public TokenizedInstruction {
        if (promptLength < 1 || promptLength >= ids.length) {
            throw new IllegalArgumentException("a training sequence of " + ids.length + " tokens needs a prompt of 1 to "
                    + (ids.length - 1) + " tokens so that a response token remains; got " + promptLength);
        }
    }

    public int length() {
        return ids.length;
    }

    /** How many tokens the loss counts. */
    public int targets() {
        return ids.length - promptLength;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TokenizedInstruction t && t.promptLength == promptLength && Arrays.equals(t.ids, ids);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(ids) + promptLength;
    }

    @Override
    public String toString() {
        return "TokenizedInstruction" + Arrays.toString(ids) + " prompt " + promptLength;
    }
}
