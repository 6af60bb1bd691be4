package dev.moelora.cluster.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.AnswerKind;
import dev.moelora.model.data.InstructionDataset.MathTestSet;
import dev.moelora.model.instruct.MathEvaluation;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.tokenizer.BpeTokenizer;
import dev.moelora.model.train.Evaluation;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A decoder's math evaluation as every job reports it: each test set scored by greedy generation
 * ({@link MathEvaluation}), every prediction a line of {@code predictions.jsonl} in the given
 * directory, and the scores as eval.json holds them (task, answer kind, examples, correct,
 * accuracy, chance, prompts too long). The same for the single-process job and router 0 of the
 * expert-parallel runtime.
 */
public final class InstructionEvaluation {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The scores, and their eval.json form. */
    public record Result(List<Evaluation.TaskScore> scores, ArrayNode json) {}

    private InstructionEvaluation() {}

    public static Result run(LlamaDecoder decoder, Adapters adapters, BpeTokenizer tokenizer, List<MathTestSet> testSets, int maxNewTokens,
                             Path dir, PrintStream out) throws IOException {
        List<Evaluation.TaskScore> scores = new ArrayList<>();
        ArrayNode evalJson = JSON.createArrayNode();
        Files.createDirectories(dir);
        try (BufferedWriter predictions = Files.newBufferedWriter(dir.resolve("predictions.jsonl"))) {
            for (MathTestSet set : testSets) {
                out.printf(Locale.ROOT, "evaluating %s (%d records, greedy, up to %d new tokens)...%n", set.name(), set.records().size(), maxNewTokens);
                MathEvaluation.Score s = MathEvaluation.run(decoder, adapters, tokenizer, set, maxNewTokens, (task, done, total, correct) -> {
                    if (done == total || (total >= 40 && done % (total / 4) == 0)) {
                        out.printf(Locale.ROOT, "  %s %d/%d: accuracy %.3f%n", task, done, total, (double) correct / done);
                    }
                });
                for (MathEvaluation.Prediction p : s.predictions()) {
                    ObjectNode line = JSON.createObjectNode();
                    line.put("task", set.name());
                    line.put("index", p.index());
                    line.put("completion", p.completion());
                    line.put("prediction", p.prediction());
                    line.put("gold", p.gold());
                    line.put("correct", p.correct());
                    if (p.promptTooLong()) line.put("prompt_too_long", true);
                    predictions.write(JSON.writeValueAsString(line));
                    predictions.newLine();
                }
                double chance = s.kind() == AnswerKind.LETTER ? 0.2 : 0.0;
                scores.add(new Evaluation.TaskScore(set.name(), s.examples(), s.correct(), chance));
                ObjectNode o = evalJson.addObject();
                o.put("task", set.name());
                o.put("answer", s.kind().name().toLowerCase(Locale.ROOT));
                o.put("examples", s.examples());
                o.put("correct", s.correct());
                o.put("accuracy", s.accuracy());
                o.put("chance", chance);
                o.put("prompt_too_long", s.promptTooLong());
            }
        }
        return new Result(scores, evalJson);
    }

    /** The evaluation table, or a line saying there was nothing to score. */
    public static String table(List<Evaluation.TaskScore> scores) {
        return scores.isEmpty() ? "no test sets (data.instructions.eval-tasks and eval-files are empty)\n" : Evaluation.table(scores);
    }
}
