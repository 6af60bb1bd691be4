package dev.moelora.model.instruct;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.AnswerKind;
import dev.moelora.model.data.InstructionDataset.MathTestSet;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.tokenizer.BpeTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Math accuracy as LLM-Adapters' evaluate.py measures it: for each test record, the prompt
 * template without the output ({@link PromptTemplate#prompt}), a completion generated from it, and
 * the answer {@link MathAnswers} extracts from the completion compared with the gold answer. One
 * difference, stated: the completion here is greedy, theirs is a 4-beam search
 * ({@code num_beams=4}, no sampling). A prompt that leaves the model no position to generate into
 * counts as wrong and is reported. It never trains: adapters are put in evaluation mode.
 */
public final class MathEvaluation {
    /** One scored record. */
    public record Prediction(int index, String completion, String prediction, String gold, boolean correct, boolean promptTooLong) {}

    /** One test set's result. */
    public record Score(String task, AnswerKind kind, int examples, int correct, int promptTooLong, List<Prediction> predictions) {
        public double accuracy() {
            return examples == 0 ? 0 : (double) correct / examples;
        }
    }

    /** Called after each record, e.g. to show progress. */
    public interface Listener {
        void onRecord(String task, int done, int total, int correct);
    }

    private MathEvaluation() {}

    /** One record at a time: {@link #run(LlamaDecoder, Adapters, BpeTokenizer, MathTestSet, int, int, Listener)} with batches of 1. */
    public static Score run(LlamaDecoder decoder, Adapters adapters, BpeTokenizer tokenizer, MathTestSet set, int maxNewTokens,
                            Listener listener) {
        return run(decoder, adapters, tokenizer, set, maxNewTokens, 1, listener);
    }

    /**
     * @param maxNewTokens upper bound on each completion's tokens (evaluate.py: 256), also bounded by
     *                     the model's positions
     * @param batch        records generated together ({@link GreedyCompletions}); the scores do not depend on it
     */
    public static Score run(LlamaDecoder decoder, Adapters adapters, BpeTokenizer tokenizer, MathTestSet set, int maxNewTokens, int batch,
                            Listener listener) {
        int n = set.records().size();
        int[] counts = new int[2];                                          // correct, prompt too long
        List<Prediction> predictions = new ArrayList<>(n);
        GreedyCompletions.forEach(decoder, adapters, tokenizer, set.records(), maxNewTokens, batch, (i, r, c) -> {
            Prediction p;
            if (c.promptTooLong()) {
                counts[1]++;
                p = new Prediction(i, "", "", r.answer(), false, true);
            } else {
                boolean ok = MathAnswers.correct(set.kind(), c.text(), r.answer());
                if (ok) counts[0]++;
                p = new Prediction(i, c.text(), MathAnswers.prediction(set.kind(), c.text()), r.answer(), ok, false);
            }
            predictions.add(p);
            listener.onRecord(set.name(), i + 1, n, counts[0]);
        });
        return new Score(set.name(), set.kind(), n, counts[0], counts[1], predictions);
    }
}
