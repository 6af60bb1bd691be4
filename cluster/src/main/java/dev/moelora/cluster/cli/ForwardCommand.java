package dev.moelora.cluster.cli;

import dev.moelora.cluster.hub.HubModels;
import dev.moelora.cluster.setup.BaseModel;
import dev.moelora.cluster.setup.DecoderCheckpoint;
import dev.moelora.cluster.setup.SavedAdapter;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.llama.DecoderBatch;
import dev.moelora.model.llama.LlamaDecoder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Prints a model's output for one sequence as JSON, how users check a conversion or a saved
 * adapter: an encoder's final hidden states (T, H), or a LLaMA decoder's next-token logits (T, V),
 * of the base model alone or with an adapter directory on it. Both as
 * {@code {"shape":[rows,cols],"data":[...]}}, row-major.
 */
@Command(name = "forward", mixinStandardHelpOptions = true,
        description = {"Print the model's output for one sequence as {\"shape\":[T,N],\"data\":[...]} (row-major):",
                "an encoder's final hidden states (N = hidden size) or a LLaMA checkpoint's logits (N = vocabulary),",
                "with --adapter DIR, with that saved adapter on the model (any of moelora's families, or a LoRA PEFT saved)."})
public final class ForwardCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = "minilm",
            description = "'minilm' (embedded), a BERT .onnx file, a LLaMA checkpoint directory (config.json, safetensors, tokenizer.json), or one on the Hugging Face Hub: hf:ORG/NAME[@REVISION] (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--tokenizer", description = "tokenizer.json for an .onnx model (default: next to it)")
    String tokenizer;

    @Option(names = "--heads", defaultValue = "12", description = "attention heads of an .onnx model (default: ${DEFAULT-VALUE})")
    int heads;

    @Option(names = "--adapter", description = "an adapter directory (adapter_config.json, adapter_model.safetensors) to put on the model")
    Path adapter;

    @ArgGroup(multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--ids", split = ",", description = "token ids, e.g. 101,7592,2088,102")
        int[] ids;

        @Option(names = "--text", description = "text to tokenize (encoder: [CLS] text [SEP]; decoder: BOS text)")
        String text;
    }

    @Override
    public Integer call() throws Exception {
        if (input.ids != null && input.ids.length == 0) throw new IllegalArgumentException("--ids: no token ids given");
        Path dir = HubModels.resolve(model);
        INDArray out = DecoderCheckpoint.isCheckpoint(dir) ? decoderLogits(dir) : encoderHidden();
        System.out.println(json(out));
        return 0;
    }

    private INDArray encoderHidden() throws Exception {
        BaseModel base = BaseModel.fromSpec(model, tokenizer, heads);
        if (adapter != null) SavedAdapter.load(adapter, base.encoder());
        int[] ids = input.ids != null ? input.ids : base.tokenizer().encode(input.text, base.encoder().config().maxPositions()).ids();
        float[] mask = new float[ids.length];
        Arrays.fill(mask, 1f);
        return base.encoder().forward(new TokenBatch(1, ids.length, ids, new int[ids.length], mask));
    }

    private INDArray decoderLogits(Path dir) throws Exception {
        LlamaDecoder decoder = DecoderCheckpoint.decoder(dir);
        if (adapter != null) SavedAdapter.load(adapter, decoder);
        int[] ids = input.ids != null ? input.ids : DecoderCheckpoint.tokenizer(dir).encode(input.text, true);
        if (ids.length == 0) throw new IllegalArgumentException("--text: the tokenizer gave no tokens");
        float[] mask = new float[ids.length];
        Arrays.fill(mask, 1f);
        return decoder.forward(new DecoderBatch(1, ids.length, ids, mask));
    }

    /** {"shape":[rows,cols],"data":[...]}, row-major, as float32 values; streamed through Jackson (no tree of the whole matrix). */
    static String json(INDArray m) throws java.io.IOException {
        long rows = m.size(0), cols = m.size(1);
        java.io.StringWriter text = new java.io.StringWriter();
        try (com.fasterxml.jackson.core.JsonGenerator g = new com.fasterxml.jackson.core.JsonFactory().createGenerator(text)) {
            g.writeStartObject();
            g.writeArrayFieldStart("shape");
            g.writeNumber(rows);
            g.writeNumber(cols);
            g.writeEndArray();
            g.writeArrayFieldStart("data");
            for (long r = 0; r < rows; r++) {
                for (long c = 0; c < cols; c++) g.writeNumber(m.getFloat(r, c));
            }
            g.writeEndArray();
            g.writeEndObject();
        }
        return text.toString();
    }
}
