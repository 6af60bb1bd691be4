package dev.moelora.cluster.setup;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.hub.HubModels;
import dev.moelora.model.data.Instruction;
import dev.moelora.model.data.InstructionDataset;
import dev.moelora.model.data.InstructionDataset.MathTestSet;
import dev.moelora.model.instruct.InstructionEncoder;
import dev.moelora.model.instruct.TokenizedInstruction;
import dev.moelora.model.llama.LlamaCheckpoint;
import dev.moelora.model.llama.LlamaConfig;
import dev.moelora.model.tokenizer.BpeTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What a decoder's instruction-tuning run trains and scores, as its configuration names it: the
 * checkpoint directory and its config, the tokenizer, the training records tokenized with the
 * LLM-Adapters template, the math test sets and the generation budget. Built the same way by the
 * single-process job, every router of the expert-parallel runtime and its coordinator (which
 * needs only the sequences' lengths to draw the same micro-batches), so they all see the same
 * sequences in the same order. It loads no weights.
 */
public record InstructionData(Path modelDir, LlamaConfig model, BpeTokenizer tokenizer, Path trainFile, List<Instruction> records,
                              InstructionEncoder.Encoded encoded, List<MathTestSet> testSets, int maxLength, int maxNewTokens, int padId) {

    public List<TokenizedInstruction> sequences() {
        return encoded.sequences();
    }

    public static InstructionData load(RunConfig config) throws IOException {
        if (!config.string("data.source").equals("instructions")) {
            throw new IllegalArgumentException("model.name = llama trains on instructions: set data.source = instructions (it is '"
                    + config.string("data.source") + "')");
        }
        String modelPath = config.string("model.path");
        Path modelDir = modelPath.isEmpty() ? null : HubModels.resolve(modelPath);
        if (modelDir == null || !DecoderCheckpoint.isCheckpoint(modelDir)) {
            throw new IllegalArgumentException("model.path: '" + modelPath + "' is not a LLaMA checkpoint directory (config.json, safetensors, tokenizer.json)");
        }
        LlamaConfig model = LlamaConfig.read(modelDir.resolve(LlamaCheckpoint.CONFIG));
        BpeTokenizer tokenizer = DecoderCheckpoint.tokenizer(modelDir);
        int maxLength = config.integer("data.instructions.max-length");
        if (maxLength > model.maxPositions()) {
            throw new IllegalArgumentException("data.instructions.max-length = " + maxLength + " exceeds the model's "
                    + model.maxPositions() + " positions (" + modelDir + ")");
        }
        Path trainFile = Path.of(config.string("data.instructions.file"));
        List<Instruction> records = head(InstructionDataset.readTraining(trainFile), config.integer("data.instructions.max-train"));
        InstructionEncoder.Encoded encoded = InstructionEncoder.encode(records, tokenizer, maxLength);
        if (encoded.sequences().isEmpty()) {
            throw new IllegalArgumentException(trainFile + ": every prompt fills data.instructions.max-length = " + maxLength + "; nothing to train on");
        }
        int padId = tokenizer.padId().orElse(tokenizer.unkId().orElse(0)); // LLM-Adapters pads with 0, LLaMA's <unk>
        return new InstructionData(modelDir, model, tokenizer, trainFile, records, encoded, testSets(config), maxLength,
                config.integer("data.instructions.max-new-tokens"), padId);
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
