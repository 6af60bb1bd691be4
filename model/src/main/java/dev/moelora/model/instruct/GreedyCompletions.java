package dev.moelora.model.instruct;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.Instruction;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.Sampler;
import dev.moelora.model.tokenizer.BpeTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Greedy completions of instruction records for the evaluation harnesses: each record's prompt
 * ({@link PromptTemplate#prompt}, the template without the output, BOS first), continued by
 * greedy decoding through the decoder's batched KV-cache generation, and decoded. Greedy tokens
 * do not depend on what else is in the batch, so the batch size changes the speed only. A prompt
 * that leaves the model no position to generate into gets no completion. It never trains and never
 * scores; the caller puts the adapters in evaluation mode.
 */
public final class GreedyCompletions {
    /** A record's completion, the decoded new text; empty and flagged when its prompt fills the model's positions. */
    public record Completion(String text, boolean promptTooLong) {}

    private GreedyCompletions() {}

    /** What a harness does with one record's completion; {@code index} is the record's position in the test set. */
    public interface Scorer {
        void score(int index, Instruction record, Completion completion);
    }

    /**
     * Every record's completion, {@code batch} records generated together, handed to {@code scorer}
     * in the records' order: the loop both evaluation harnesses share. Puts the adapters in
     * evaluation mode (no dropout, no row mask) first.
     *
     * @param batch records generated together; the completions do not depend on it
     */
    public static void forEach(LlamaDecoder decoder, Adapters adapters, BpeTokenizer tokenizer, List<Instruction> records, int maxNewTokens,
                               int batch, Scorer scorer) {
        if (batch < 1) throw new IllegalArgumentException("batch must be >= 1, got " + batch);
        adapters.setTraining(false);
        adapters.setRowMask(null);
        int n = records.size();
        for (int from = 0; from < n; from += batch) {
            List<Instruction> some = records.subList(from, Math.min(n, from + batch));
            List<Completion> completions = of(decoder, tokenizer, some, maxNewTokens);
            for (int j = 0; j < some.size(); j++) scorer.score(from + j, some.get(j), completions.get(j));
        }
    }

    /**
     * The completions of {@code records}, in their order, generated together.
     *
     * @param maxNewTokens upper bound on each completion's tokens, also bounded by the model's positions
     */
    public static List<Completion> of(LlamaDecoder decoder, BpeTokenizer tokenizer, List<Instruction> records, int maxNewTokens) {
        if (maxNewTokens < 1) throw new IllegalArgumentException("max-new-tokens must be >= 1, got " + maxNewTokens);
        int positions = decoder.config().maxPositions();
        List<int[]> prompts = new ArrayList<>();
        List<Integer> rooms = new ArrayList<>(), which = new ArrayList<>();
        Completion[] out = new Completion[records.size()];
        for (int i = 0; i < records.size(); i++) {
            int[] prompt = tokenizer.encode(PromptTemplate.prompt(records.get(i)), true);
            int room = Math.min(maxNewTokens, positions - prompt.length);
            if (room < 1) {
                out[i] = new Completion("", true);
                continue;
            }
            prompts.add(prompt);
            rooms.add(room);
            which.add(i);
        }
        if (!prompts.isEmpty()) {
            List<Sampler> greedy = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) greedy.add(Sampler.greedy());
            List<int[]> tokens = decoder.generate(prompts, rooms.stream().mapToInt(Integer::intValue).toArray(), greedy);
            for (int j = 0; j < tokens.size(); j++) out[which.get(j)] = new Completion(tokenizer.decode(tokens.get(j), true), false);
        }
        return List.of(out);
    }
}
