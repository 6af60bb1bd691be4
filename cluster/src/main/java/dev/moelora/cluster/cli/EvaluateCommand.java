package dev.moelora.cluster.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.hub.HubModels;
import dev.moelora.cluster.setup.DecoderCheckpoint;
import dev.moelora.cluster.setup.SavedAdapter;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.AnswerKind;
import dev.moelora.model.data.InstructionDataset;
import dev.moelora.model.data.InstructionDataset.MathTestSet;
import dev.moelora.model.instruct.CommonsenseAnswers;
import dev.moelora.model.instruct.CommonsenseEvaluation;
import dev.moelora.model.instruct.MathEvaluation;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.tokenizer.BpeTokenizer;
import dev.moelora.model.train.Evaluation;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Scores a LLaMA checkpoint, under a saved adapter or alone, on LLM-Adapters' test sets by greedy
 * generation: math tasks as their evaluate.py scores them ({@link MathEvaluation}, the instruction
 * job's harness), commonsense tasks as their commonsense_evaluate.py does
 * ({@link CommonsenseEvaluation}). Prints progress and the table; with {@code --out} also writes
 * eval.md, eval.json and predictions.jsonl there. It never trains and never writes elsewhere.
 */
@Command(name = "evaluate", mixinStandardHelpOptions = true,
        description = {"Score a LLaMA checkpoint, with a saved adapter or without, on LLM-Adapters' test sets by greedy generation:",
                "math tasks (AddSub, MultiArith, SingleEq, SVAMP, gsm8k, AQuA, mawps, mathqa) as their evaluate.py scores them,",
                "commonsense tasks (boolq, piqa, social_i_qa, hellaswag, winogrande, ARC-Challenge, ARC-Easy, openbookqa) as",
                "commonsense_evaluate.py does. Each task is <data>/<task>/test.json."})
public final class EvaluateCommand implements Callable<Integer> {
    static final Set<String> MATH = Set.of("AddSub", "MultiArith", "SingleEq", "SVAMP", "gsm8k", "AQuA", "mawps", "mathqa");
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--model", required = true, description = "LLaMA checkpoint directory (config.json, safetensors, tokenizer.json), or hf:ORG/NAME[@REVISION] from the Hugging Face Hub")
    String model;

    @Option(names = "--adapter", description = "adapter directory (adapter_config.json, adapter_model.safetensors); without it the base model alone")
    Path adapter;

    @Option(names = "--tasks", split = ",", defaultValue = "AddSub,MultiArith,SingleEq,SVAMP,gsm8k,AQuA",
            description = "tasks to score, math or commonsense (default: ${DEFAULT-VALUE})")
    List<String> tasks;

    @Option(names = "--data", defaultValue = "../shared/data/llm-adapters/dataset",
            description = "LLM-Adapters' dataset directory, one folder per task (default: ${DEFAULT-VALUE})")
    Path data;

    @Option(names = "--max-per-task", defaultValue = "0", description = "score the first N records of each task; 0 = all (default: ${DEFAULT-VALUE})")
    int maxPerTask;

    @Option(names = "--max-new-tokens", description = "new tokens per completion (default: 256 for math as evaluate.py, 32 for commonsense as commonsense_evaluate.py)")
    Integer maxNewTokens;

    @Option(names = "--batch", defaultValue = "8", description = "records generated together; the scores do not depend on it (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--out", description = "also write eval.md, eval.json and predictions.jsonl into this directory")
    Path out;

    @Override
    public Integer call() throws Exception {
        Path model = HubModels.resolve(this.model);
        if (!DecoderCheckpoint.isCheckpoint(model)) throw new IllegalArgumentException("--model " + model + ": not a directory with config.json");
        if (batch < 1) throw new IllegalArgumentException("--batch must be >= 1, got " + batch);
        if (maxNewTokens != null && maxNewTokens < 1) throw new IllegalArgumentException("--max-new-tokens must be >= 1, got " + maxNewTokens);
        for (String t : tasks) {
            if (!MATH.contains(t) && !CommonsenseAnswers.isTask(t)) {
                throw new IllegalArgumentException("--tasks: unknown task '" + t + "' (math: " + new java.util.TreeSet<>(MATH) + "; commonsense: "
                        + new java.util.TreeSet<>(CommonsenseAnswers.WORDS.keySet()) + ")");
            }
            if (!Files.isRegularFile(data.resolve(t).resolve("test.json"))) {
                throw new IllegalArgumentException("--tasks " + t + ": no " + data.resolve(t).resolve("test.json") + " (--data names LLM-Adapters' dataset directory)");
            }
        }
        BpeTokenizer tokenizer = DecoderCheckpoint.tokenizer(model);
        LlamaDecoder decoder = DecoderCheckpoint.decoder(model);
        Adapters adapters = adapter == null ? Adapters.NONE : SavedAdapter.load(adapter, decoder).adapters();
        System.out.printf(Locale.ROOT, "moelora evaluate%n  base model : %s%n  adapter    : %s%n  tasks      : %s (greedy, batches of %d)%n",
                DecoderCheckpoint.describe(model, decoder.config()), adapter == null ? "none (the base model alone)" : adapter + ": " + adapters.describe(),
                tasks, batch);

        List<Evaluation.TaskScore> scores = new ArrayList<>();
        ArrayNode evalJson = JSON.createArrayNode();
        List<ObjectNode> predictions = new ArrayList<>();
        for (String task : tasks) {
            Path file = data.resolve(task).resolve("test.json");
            MathEvaluation.Listener progress = (name, done, total, correct) -> {
                if (done == total || (total >= 40 && done % (total / 4) == 0)) {
                    System.out.printf(Locale.ROOT, "  %s %d/%d: accuracy %.3f%n", name, done, total, (double) correct / done);
                }
            };
            ObjectNode o = evalJson.addObject();
            o.put("task", task);
            if (MATH.contains(task)) {
                MathTestSet set = limit(InstructionDataset.readMathTest(file, task));
                int maxNew = maxNewTokens == null ? 256 : maxNewTokens;
                System.out.printf(Locale.ROOT, "evaluating %s (%d records, math, up to %d new tokens)...%n", task, set.records().size(), maxNew);
                MathEvaluation.Score s = MathEvaluation.run(decoder, adapters, tokenizer, set, maxNew, batch, progress);
                for (MathEvaluation.Prediction p : s.predictions()) {
                    predictions.add(prediction(task, p.index(), p.completion(), p.prediction(), p.gold(), p.correct(), p.promptTooLong()));
                }
                scores.add(new Evaluation.TaskScore(task, s.examples(), s.correct(), s.kind() == AnswerKind.LETTER ? 0.2 : 0.0));
                o.put("answer", s.kind().name().toLowerCase(Locale.ROOT));
                put(o, s.examples(), s.correct(), s.accuracy(), s.promptTooLong());
            } else {
                CommonsenseEvaluation.TestSet read = CommonsenseEvaluation.read(file, task);
                CommonsenseEvaluation.TestSet set = new CommonsenseEvaluation.TestSet(task, head(read.records()));
                int maxNew = maxNewTokens == null ? CommonsenseEvaluation.MAX_NEW_TOKENS : maxNewTokens;
                System.out.printf(Locale.ROOT, "evaluating %s (%d records, commonsense, up to %d new tokens)...%n", task, set.records().size(), maxNew);
                CommonsenseEvaluation.Score s = CommonsenseEvaluation.run(decoder, adapters, tokenizer, set, maxNew, batch, progress);
                for (CommonsenseEvaluation.Prediction p : s.predictions()) {
                    predictions.add(prediction(task, p.index(), p.completion(), p.prediction(), p.gold(), p.correct(), p.promptTooLong()));
                }
                scores.add(new Evaluation.TaskScore(task, s.examples(), s.correct(), CommonsenseAnswers.chance(task)));
                o.put("answer", "word");
                put(o, s.examples(), s.correct(), s.accuracy(), s.promptTooLong());
            }
        }
        String table = Evaluation.table(scores);
        System.out.print(table);
        if (out != null) write(table, evalJson, predictions);
        return 0;
    }

    private static void put(ObjectNode o, int examples, int correct, double accuracy, int promptTooLong) {
        o.put("examples", examples);
        o.put("correct", correct);
        o.put("accuracy", accuracy);
        o.put("prompt_too_long", promptTooLong);
    }

    private static ObjectNode prediction(String task, int index, String completion, String prediction, String gold, boolean correct, boolean tooLong) {
        ObjectNode line = JSON.createObjectNode();
        line.put("task", task);
        line.put("index", index);
        line.put("completion", completion);
        line.put("prediction", prediction);
        line.put("gold", gold);
        line.put("correct", correct);
        if (tooLong) line.put("prompt_too_long", true);
        return line;
    }

    private void write(String table, ArrayNode evalJson, List<ObjectNode> predictions) throws IOException {
        Files.createDirectories(out);
        RunDirectory.writeEvaluation(out, table, evalJson);
        try (BufferedWriter w = Files.newBufferedWriter(out.resolve("predictions.jsonl"))) {
            for (ObjectNode line : predictions) {
                w.write(JSON.writeValueAsString(line));
                w.newLine();
            }
        }
        System.out.println("wrote " + out.resolve("eval.md") + ", eval.json and predictions.jsonl");
    }

    private MathTestSet limit(MathTestSet s) {
        return new MathTestSet(s.name(), s.kind(), head(s.records()));
    }

    private <T> List<T> head(List<T> list) {
        return maxPerTask > 0 && list.size() > maxPerTask ? list.subList(0, maxPerTask) : list;
    }
}
