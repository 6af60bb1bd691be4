package dev.moelora.cluster.single;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.Instruction;
import dev.moelora.model.data.InstructionDataset;
import dev.moelora.model.data.InstructionDataset.MathTestSet;
import dev.moelora.model.instruct.InstructionEncoder;
import dev.moelora.model.instruct.InstructionTrainer;
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
import dev.moelora.cluster.job.InstructionEvaluation;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.job.Preemption;
import dev.moelora.cluster.job.Progress;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.setup.AdapterFamily;
import dev.moelora.cluster.setup.DecoderCheckpoint;
import dev.moelora.cluster.setup.InstructionData;
import dev.moelora.cluster.setup.RunSetup;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
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

    private InstructionJob() {}

    public static JobResult run(RunConfig config, PrintStream out, boolean terminal) throws IOException {
        return run(config, out, terminal, () -> Preemption.install(config.duration("checkpoint.preemption-timeout")));
    }

    /** The run, with {@code preemption} deciding when it stops early at a checkpoint (this JVM's SIGTERM, or a test's condition). */
    public static JobResult run(RunConfig config, PrintStream out, boolean terminal, Supplier<Preemption> preemption) throws IOException {
        long t0 = System.nanoTime();
        InstructionData data = InstructionData.load(config);
        Path modelDir = data.modelDir();
        BpeTokenizer tokenizer = data.tokenizer();
        LlamaDecoder decoder = DecoderCheckpoint.decoder(modelDir);
        TrainConfig train = RunSetup.trainConfig(config);
        Path trainFile = data.trainFile();
        List<Instruction> records = data.records();
        InstructionEncoder.Encoded encoded = data.encoded();
        List<MathTestSet> testSets = data.testSets();
        int maxLength = data.maxLength();

        Path runDir = RunDirectory.create(config);
        Adapters adapters = AdapterFamily.apply(config, decoder, train.seed());
        InstructionTrainer trainer = new InstructionTrainer(decoder, adapters, encoded.sequences(), train,
                config.bool("data.instructions.group-by-length"), data.padId());

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

        InstructionEvaluation.Result evaluated = InstructionEvaluation.run(decoder, adapters, tokenizer, testSets, data.maxNewTokens(), runDir, out);
        List<Evaluation.TaskScore> scores = evaluated.scores();
        String table = InstructionEvaluation.table(scores);
        out.print(table);
        RunDirectory.writeEvaluation(runDir, table, evaluated.json());
        double tps = totals.tokensPerSecond();
        out.printf(Locale.ROOT, "adapter saved to %s; %,.0f training tokens/s; total %s%n", adapterDir, tps,
                Progress.duration((System.nanoTime() - t0) / 1e9));
        return new JobResult(runDir, adapters.describe(), scores, adapters.trainableParameters(), tps, totals.seconds(),
                (System.nanoTime() - t0) / 1e9, totals.losses());
    }
}
