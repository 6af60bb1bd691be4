package dev.moelora.cluster.setup;

import dev.moelora.model.llama.LlamaCheckpoint;
import dev.moelora.model.llama.LlamaConfig;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.tokenizer.BpeTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A LLaMA-family checkpoint directory (LlamaForCausalLM or Qwen2ForCausalLM) as the command line and run configs name it: Hugging Face's
 * {@code config.json}, safetensors weights and {@code tokenizer.json}. Loads in float32; never
 * writes to the directory.
 */
public final class DecoderCheckpoint {
    public static final String TOKENIZER = "tokenizer.json";

    private DecoderCheckpoint() {}

    /** Whether {@code path} is a directory holding a config.json: a decoder checkpoint rather than an encoder's .onnx file. */
    public static boolean isCheckpoint(Path path) {
        return Files.isDirectory(path) && Files.isRegularFile(path.resolve(LlamaCheckpoint.CONFIG));
    }

    public static LlamaDecoder decoder(Path dir) throws IOException {
        return LlamaCheckpoint.load(dir, DataType.FLOAT);
    }

    /** The directory's tokenizer.json; its absence is an error naming the directory. */
    public static BpeTokenizer tokenizer(Path dir) throws IOException {
        Path file = dir.resolve(TOKENIZER);
        if (!Files.isRegularFile(file)) {
            throw new IOException(dir + ": no " + TOKENIZER + " (text in and out of a LLaMA checkpoint needs the Hugging Face tokenizer.json next to config.json)");
        }
        return BpeTokenizer.fromJson(file);
    }

    /**
     * One line for a run header, e.g. "models/tiny (LlamaForCausalLM, 2 layers, hidden 32, 4/2 heads,
     * vocabulary 48, 64 positions)" or "models/qwen (Qwen2ForCausalLM, ..., q/k/v biases, tied embeddings)".
     */
    public static String describe(Path dir, LlamaConfig c) {
        return dir + " (" + c.describe() + ")";
    }
}
