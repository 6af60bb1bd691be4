package dev.moelora.cluster.cli;

import dev.moelora.cluster.run.BaseModel;
import dev.moelora.model.bert.TokenBatch;
import java.util.Arrays;
import java.util.concurrent.Callable;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Prints the base model's final hidden states as JSON: how users check a conversion. */
@Command(name = "forward", mixinStandardHelpOptions = true,
        description = "Print the base model's final hidden states for one sequence as {\"shape\":[T,H],\"data\":[...]} (row-major).")
public final class ForwardCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = "minilm", description = "'minilm' (embedded) or a BERT .onnx file (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--tokenizer", description = "tokenizer.json for an .onnx model (default: next to it)")
    String tokenizer;

    @Option(names = "--heads", defaultValue = "12", description = "attention heads of an .onnx model (default: ${DEFAULT-VALUE})")
    int heads;

    @ArgGroup(multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--ids", split = ",", description = "token ids, e.g. 101,7592,2088,102")
        int[] ids;

        @Option(names = "--text", description = "text to tokenize ([CLS] text [SEP])")
        String text;
    }

    @Override
    public Integer call() throws Exception {
        BaseModel base = BaseModel.fromSpec(model, tokenizer, heads);
        int[] ids = input.ids != null ? input.ids : base.tokenizer().encode(input.text, base.encoder().config().maxPositions()).ids();
        if (ids.length == 0) throw new IllegalArgumentException("--ids: no token ids given");
        float[] mask = new float[ids.length];
        Arrays.fill(mask, 1f);
        INDArray hidden = base.encoder().forward(new TokenBatch(1, ids.length, ids, new int[ids.length], mask));
        StringBuilder sb = new StringBuilder((int) Math.min(Integer.MAX_VALUE, hidden.length() * 12));
        sb.append("{\"shape\":[").append(hidden.size(0)).append(',').append(hidden.size(1)).append("],\"data\":[");
        for (long i = 0; i < hidden.length(); i++) {
            if (i > 0) sb.append(',');
            sb.append(Float.toString(hidden.getFloat(i)));
        }
        sb.append("]}");
        System.out.println(sb);
        return 0;
    }
}
