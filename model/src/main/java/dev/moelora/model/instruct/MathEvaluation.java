package dev.moelora.model.instruct;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.AnswerKind;
import dev.moelora.model.data.Instruction;
import dev.moelora.model.data.InstructionDataset.MathTestSet;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.Sampler;
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

    /**
     * @param maxNewTokens upper bound on each completion's tokens (evaluate.py: 256), also bounded by
     *                     the model's positions
     */
    public static Score run(LlamaDecoder decoder, Adapters adapters, BpeTokenizer tokenizer, MathTestSet set, int maxNewTokens,
                            Listener listener) {
        if (maxNewTokens < 1) throw new IllegalArgumentException("max-new-tokens must be >= 1, got " + maxNewTokens);
        adapters.setTraining(false);
        adapters.setRowMask(null);
        int positions = decoder.config().maxPositions(), correct = 0, tooLong = 0;
        List<Prediction> predictions = new ArrayList<>(set.records().size());
        for (int i = 0; i < set.records().size(); i++) {
            Instruction r = set.records().get(i);
            int[] prompt = tokenizer.encode(PromptTemplate.prompt(r), true);
            int room = Math.min(maxNewTokens, positions - prompt.length);
            Prediction p;
            if (room < 1) {
                tooLong++;
                p = new Prediction(i, "", "", r.answer(), false, true);
            } else {
                String completion = tokenizer.decode(decoder.generate(prompt, room, Sampler.greedy()), true);
                boolean ok = MathAnswers.correct(set.kind(), completion, r.answer());
                if (ok) correct++;
                p = new Prediction(i, completion, MathAnswers.prediction(set.kind(), completion), r.answer(), ok, false);
            }
            predictions.add(p);
            listener.onRecord(set.name(), i + 1, set.records().size(), correct);
        }
        return new Score(set.name(), set.kind(), set.records().size(), correct, tooLong, predictions);
    }
}
