package dev.moelora.model.instruct;

import dev.moelora.model.data.Instruction;
import dev.moelora.model.tokenizer.BpeTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Tokenizes instruction records for training as LLM-Adapters' finetune.py does with
 * {@code train_on_inputs=False} ({@code tokenize} and {@code generate_and_tokenize_prompt}):
 * <ol>
 *   <li>the full text (prompt + output, {@link PromptTemplate#full}) is encoded with the
 *       tokenizer's special tokens (LLaMA's leading BOS) and cut to the first {@code maxLength}
 *       tokens;
 *   <li>EOS is appended only when the cut sequence is shorter than {@code maxLength} (and does not
 *       already end in EOS): a truncated response is trained without its end;
 *   <li>the prompt alone is encoded the same way (without EOS, cut to {@code maxLength}); its
 *       length is where the targets begin, so the loss covers the response and EOS only.
 * </ol>
 * Encoding the full text in one piece, rather than joining separately encoded prompt and output,
 * keeps the tokenization a model sees at inference. A record whose prompt alone fills
 * {@code maxLength} has no target left: it is left out and counted (their code kept it with every
 * label -100, where it trains nothing).
 */
public final class InstructionEncoder {
    /**
     * @param truncated records whose full text was cut to maxLength (kept, without EOS)
     * @param dropped   records left out because their prompt alone reached maxLength
     */
    public record Encoded(List<TokenizedInstruction> sequences, int truncated, int dropped) {
        public Encoded {
            sequences = List.copyOf(sequences);
        }
    }

    private InstructionEncoder() {}

    public static Encoded encode(List<Instruction> records, BpeTokenizer tokenizer, int maxLength) {
        if (maxLength < 2) throw new IllegalArgumentException("max-length must be >= 2 (a prompt token and a target), got " + maxLength);
        int eos = tokenizer.eosId().orElseThrow(() -> new IllegalArgumentException(
                "the tokenizer has no end-of-sequence token (</s>, <|end_of_text|> or <|endoftext|>) to end each response with"));
        List<TokenizedInstruction> out = new ArrayList<>(records.size());
        int truncated = 0, dropped = 0;
        for (Instruction r : records) {
            int[] full = tokenizer.encode(PromptTemplate.full(r), true);
            if (full.length > maxLength) truncated++;
            int[] ids = Arrays.copyOf(full, Math.min(full.length, maxLength));
            if (ids.length < maxLength && ids[ids.length - 1] != eos) {
                ids = Arrays.copyOf(ids, ids.length + 1);
                ids[ids.length - 1] = eos;
            }
            int promptLength = Math.min(tokenizer.encode(PromptTemplate.prompt(r), true).length, maxLength);
            if (promptLength >= ids.length) {
                dropped++;
                continue;
            }
            out.add(new TokenizedInstruction(ids, promptLength));
        }
        return new Encoded(out, truncated, dropped);
    }
}
