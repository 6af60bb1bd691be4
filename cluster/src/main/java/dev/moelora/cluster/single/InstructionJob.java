package dev.moelora.cluster.single;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.AnswerKind;
import dev.moelora.model.data.Instruction;
import dev.moelora.model.data.InstructionDataset;
import dev.moelora.model.data.InstructionDataset.MathTestSet;
import dev.moelora.model.instruct.InstructionEncoder;
import dev.moelora.model.instruct.InstructionTrainer;
import dev.moelora.model.instruct.MathEvaluation;
import dev.moelora.model.instruct.TokenizedInstruction;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.tokenizer.BpeTokenizer;
import dev.moelora.model.train.Evaluation;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import dev.moelora.model.optim.AdamW;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.AdapterJson;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.job.Preemption;
import dev.moelora.cluster.job.Progress;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.setup.AdapterFamily;
import dev.moelora.cluster.setup.DecoderCheckpoint;
import dev.moelora.cluster.setup.RunSetup;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * One instruction-tuning run of a LLaMA-family decoder, end to end: checkpoint and tokenizer,
 * instruction records tokenized with the LLM-Adapters template, the adapter on the decoder's
 * projections, training with progress and per-step JSONL metrics, checkpoints and the final adapter,
 * then math accuracy on the test sets by greedy generation. Everything it writes goes under the run
 * directory: config.conf, metrics.jsonl (routing.jsonl for MoELoRA), events.jsonl, checkpoints/ (unless
 * checkpoint.dir is elsewhere), adapter/, predictions.jsonl, eval.md and eval.json.
 */
public final class InstructionJob {
    private static final ObjectMapper JSON = new ObjectMapper();

    private InstructionJob() {}

    public static JobResult run(RunConfig config, PrintStream out, boolean terminal) throws IOException {
        return run(config, out, terminal, () -> Preemption.install(config.duration("checkpoint.preemption-timeout")));
    }

    /** The run, with {@code preemption} deciding when it stops early at a checkpoint (this JVM's SIGTERM, or a test's condition). */
    public static JobResult run(RunConfig config, PrintStream out, boolean terminal, Supplier<Preemption> preemption) throws IOException {
        long t0 = System.nanoTime();
        if (!config.string("data.source").equals("instructions")) {
            throw new IllegalArgumentException("model.name = llama trains on instructions: set data.source = instructions (it is '"
                    + config.string("data.source") + "')");
        }
        String modelPath = config.string("model.path");
        if (modelPath.isEmpty() || !DecoderCheckpoint.isCheckpoint(Path.of(modelPath))) {
            throw new IllegalArgumentException("model.path: '" + modelPath + "' is not a LLaMA checkpoint directory (config.json, safetensors, tokenizer.json)");
        }
        Path modelDir = Path.of(modelPath);
        BpeTokenizer tokenizer = DecoderCheckpoint.tokenizer(modelDir);
        LlamaDecoder decoder = DecoderCheckpoint.decoder(modelDir);
        int maxLength = config.integer("data.instructions.max-length");
        if (maxLength > decoder.config().maxPositions()) {
            throw new IllegalArgumentException("data.instructions.max-length = " + maxLength + " exceeds the model's "
                    + decoder.config().maxPositions() + " positions (" + modelDir + ")");
        }
        TrainConfig train = RunSetup.trainConfig(config);
        Path trainFile = Path.of(config.string("data.instructions.file"));
        List<Instruction> records = head(InstructionDataset.readTraining(trainFile), config.integer("data.instructions.max-train"));
        InstructionEncoder.Encoded encoded = InstructionEncoder.encode(records, tokenizer, maxLength);
        if (encoded.sequences().isEmpty()) {
            throw new IllegalArgumentException(trainFile + ": every prompt fills data.instructions.max-length = " + maxLength + "; nothing to train on");
        }
        List<MathTestSet> testSets = testSets(config);
        int maxNew = config.integer("data.instructions.max-new-tokens");

        Path runDir = RunDirectory.create(config);
        Adapters adapters = AdapterFamily.apply(config, decoder, train.seed());
        int padId = tokenizer.padId().orElse(tokenizer.unkId().orElse(0)); // LLM-Adapters pads with 0, LLaMA's <unk>
        InstructionTrainer trainer = new InstructionTrainer(decoder, adapters, encoded.sequences(), train,
                config.bool("data.instructions.group-by-length"), padId);

        long tokens = encoded.sequences().stream().mapToLong(TokenizedInstruction::length).sum();
        long targets = encoded.sequences().stream().mapToLong(TokenizedInstruction::targets).sum();
        long emptyOutputs = records.stream().filter(r -> r.output().isBlank()).count();
        out.printf(Locale.ROOT, "moelora train -> %s%n  base model : %s (frozen)%n", runDir, DecoderCheckpoint.describe(modelDir, decoder.config()));
        out.printf(Locale.ROOT, "  adapter    : %s%n", adapters.describe());
        out.printf(Locale.ROOT, "  trainable  : %,d parameters%n", adapters.trainableParameters());
        out.printf(Locale.ROOT, "  data       : %s: %,d records -> %,d sequences, mean %.1f tokens (%.1f targets); %d cut to %d tokens, "
                        + "%d left out (prompt alone too long), %d with an empty output (EOS only)%n", trainFile, records.size(),
                encoded.sequences().size(), (double) tokens / encoded.sequences().size(), (double) targets / encoded.sequences().size(),
                encoded.truncated(), maxLength, encoded.dropped(), emptyOutputs);
        for (MathTestSet s : testSets) {
            out.printf(Locale.ROOT, "  test set   : %-14s %-6s %,5d records%n", s.name(), s.kind().name().toLowerCase(Locale.ROOT), s.records().size());
        }
        EncoderJob.printTraining(out, train, "sequences", config.bool("data.instructions.group-by-length") ? ", grouped by length" : "");

        ObjectNode adapterJson = AdapterJson.of(config, adapters.describe(), modelDir.toString(), "CAUSAL_LM", List.of());
        Path adapterDir = runDir.resolve("adapter");
        TrainingLoop.Steps steps = new TrainingLoop.Steps() {
            @Override public int step() { return trainer.step(); }
            @Override public void run(int until, Trainer.Listener listener) { trainer.run(until, listener); }
            @Override public AdamW optimizer() { return trainer.optimizer(); }
            @Override public List<Parameter> parameters() { return trainer.parameters(); }
            @Override public int epoch() { return trainer.order().epoch(); }
            @Override public int position() { return trainer.order().position(); }
            @Override public void resume(int step, int epoch, int position) { trainer.resume(step, epoch, position); }
        };
        TrainingLoop.Totals totals = TrainingLoop.run(config, runDir, steps, adapters, adapterJson, adapterDir, out, terminal, preemption);
        if (totals.preempted()) {
            return new JobResult(runDir, adapters.describe(), List.of(), adapters.trainableParameters(), totals.tokensPerSecond(),
                    totals.seconds(), (System.nanoTime() - t0) / 1e9, totals.losses());
        }

        List<Evaluation.TaskScore> scores = new ArrayList<>();
        ArrayNode evalJson = JSON.createArrayNode();
        try (BufferedWriter predictions = Files.newBufferedWriter(runDir.resolve("predictions.jsonl"))) {
            for (MathTestSet set : testSets) {
                out.printf(Locale.ROOT, "evaluating %s (%d records, greedy, up to %d new tokens)...%n", set.name(), set.records().size(), maxNew);
                MathEvaluation.Score s = MathEvaluation.run(decoder, adapters, tokenizer, set, maxNew, (task, done, total, correct) -> {
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
                scores.add(new Evaluation.TaskScore(set.name(), s.examples(), s.correct(), s.kind() == AnswerKind.LETTER ? 0.2 : 0.0));
                ObjectNode o = evalJson.addObject();
                o.put("task", set.name());
                o.put("answer", s.kind().name().toLowerCase(Locale.ROOT));
                o.put("examples", s.examples());
                o.put("correct", s.correct());
                o.put("accuracy", s.accuracy());
                o.put("prompt_too_long", s.promptTooLong());
            }
        }
        String table = scores.isEmpty() ? "no test sets (data.instructions.eval-tasks and eval-files are empty)\n" : Evaluation.table(scores);
        out.print(table);
        RunDirectory.writeEvaluation(runDir, table, evalJson);
        double tps = totals.tokensPerSecond();
        out.printf(Locale.ROOT, "adapter saved to %s; %,.0f training tokens/s; total %s%n", adapterDir, tps,
                Progress.duration((System.nanoTime() - t0) / 1e9));
        return new JobResult(runDir, adapters.describe(), scores, adapters.trainableParameters(), tps, totals.seconds(),
                (System.nanoTime() - t0) / 1e9, totals.losses());
    }

    /** eval-tasks under eval-root, then eval-files, each cut to max-eval-per-task. */
    private static List<MathTestSet> testSets(RunConfig config) throws IOException {
        int max = config.integer("data.instructions.max-eval-per-task");
        List<MathTestSet> sets = new ArrayList<>();
        List<String> tasks = config.strings("data.instructions.eval-tasks");
        if (!tasks.isEmpty()) {
            Path root = Path.of(config.string("data.instructions.eval-root"));
            if (!Files.isDirectory(root)) {
                throw new IllegalArgumentException("data.instructions.eval-root: " + root.toAbsolutePath() + " is not a directory (eval-tasks " + tasks + ")");
            }
            for (String task : tasks) sets.add(limit(InstructionDataset.readMathTest(root.resolve(task).resolve("test.json"), task), max));
        }
        for (String file : config.strings("data.instructions.eval-files")) {
            Path f = Path.of(file);
            String name = f.getParent() == null ? f.getFileName().toString() : f.getParent().getFileName() + "/" + f.getFileName();
            sets.add(limit(InstructionDataset.readMathTest(f, name), max));
        }
        return sets;
    }

    private static MathTestSet limit(MathTestSet s, int max) {
        return new MathTestSet(s.name(), s.kind(), head(s.records(), max));
    }

    private static <T> List<T> head(List<T> list, int max) {
        return max > 0 && list.size() > max ? list.subList(0, max) : list;
    }
}
