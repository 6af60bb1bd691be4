package dev.moelora.model.instruct;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.Instruction;
import dev.moelora.model.data.InstructionDataset;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.tokenizer.BpeTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Commonsense accuracy of a decoder as LLM-Adapters' commonsense_evaluate.py measures it: for each
 * test record of {@code dataset/<task>/test.json}, the prompt template without the output
 * ({@link PromptTemplate#prompt}; their script passes no input, and every record's input is empty),
 * a completion generated from it, and the answer word {@link CommonsenseAnswers} extracts from it
 * compared with the gold answer. Their script generates 32 new tokens by default
 * ({@link #MAX_NEW_TOKENS}). One difference, stated: the completion here is greedy, theirs a 4-beam
 * search. A prompt that leaves the model no position to generate into counts as wrong and is
 * reported. It never trains: adapters are put in evaluation mode.
 */
public final class CommonsenseEvaluation {
    /** commonsense_evaluate.py's {@code max_new_tokens}. */
    public static final int MAX_NEW_TOKENS = 32;

    /** One test file of a commonsense task. */
    public record TestSet(String task, List<Instruction> records) {
        public TestSet {
            CommonsenseAnswers.words(task);
            records = List.copyOf(records);
        }
    }

    /** One scored record: the completion, the answer word found in it ("" for none), the gold answer. */
    public record Prediction(int index, String completion, String prediction, String gold, boolean correct, boolean promptTooLong) {}

    public record Score(String task, int examples, int correct, int promptTooLong, List<Prediction> predictions) {
        public double accuracy() {
            return examples == 0 ? 0 : (double) correct / examples;
        }
    }

    private CommonsenseEvaluation() {}

    /** {@code file} as the test set of {@code task}; every gold answer must be one of the task's answer words. */
    public static TestSet read(Path file, String task) throws IOException {
        return new TestSet(task, InstructionDataset.readWordAnswerTest(file, CommonsenseAnswers.words(task)));
    }

    /**
     * @param batch records generated together ({@link GreedyCompletions}); the scores do not depend on it
     */
    public static Score run(LlamaDecoder decoder, Adapters adapters, BpeTokenizer tokenizer, TestSet set, int maxNewTokens, int batch,
                            MathEvaluation.Listener listener) {
        int n = set.records().size();
        int[] counts = new int[2];                                          // correct, prompt too long
        List<Prediction> predictions = new ArrayList<>(n);
        GreedyCompletions.forEach(decoder, adapters, tokenizer, set.records(), maxNewTokens, batch, (i, r, c) -> {
            String predicted = c.promptTooLong() ? "" : CommonsenseAnswers.prediction(set.task(), c.text());
            boolean ok = !c.promptTooLong() && predicted.equals(r.answer());
            if (ok) counts[0]++;
            if (c.promptTooLong()) counts[1]++;
            predictions.add(new Prediction(i, c.text(), predicted, r.answer(), ok, c.promptTooLong()));
            listener.onRecord(set.task(), i + 1, n, counts[0]);
        });
        return new Score(set.task(), n, counts[0], counts[1], predictions);
    }
}
