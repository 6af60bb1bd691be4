package dev.moelora.cluster.setup;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.onnx.OnnxWeights;
import dev.moelora.model.tokenizer.WordPieceTokenizer;
import java.io.IOException;
import java.nio.file.Path;

/** The frozen base model of a run and its tokenizer, as the config names them. */
public record BaseModel(String description, BertEncoder encoder, WordPieceTokenizer tokenizer) {

    public static BaseModel load(RunConfig config) throws IOException {
        String name = config.string("model.name");
        switch (name) {
            case "minilm" -> {
                return miniLm();
            }
            case "onnx" -> {
                String onnx = config.string("model.onnx"), tok = config.string("model.tokenizer");
                if (onnx.isEmpty() || tok.isEmpty()) {
                    throw new IllegalArgumentException("model.name = onnx needs model.onnx (the .onnx file) and model.tokenizer (its tokenizer.json)");
                }
                var weights = OnnxWeights.read(Path.of(onnx)).bertWeights();
                BertConfig bert = OnnxWeights.inferBertConfig(weights, config.integer("model.heads"), config.number("model.layer-norm-eps"));
                return new BaseModel(onnx + " (" + bert.layers() + " layers, hidden " + bert.hidden() + ")",
                        new BertEncoder(bert, weights), WordPieceTokenizer.fromJson(Path.of(tok)));
            }
            default -> throw new IllegalArgumentException("model.name must be 'minilm', 'onnx' or 'llama' (a decoder, with data.source = instructions), got '" + name + "'");
        }
    }

    /** all-MiniLM-L6-v2 from the classpath: the embedded default. */
    public static BaseModel miniLm() throws IOException {
        return new BaseModel("all-MiniLM-L6-v2 (embedded ONNX, 6 layers, hidden 384)",
                new BertEncoder(BertConfig.miniLmL6(), OnnxWeights.miniLm().bertWeights()), WordPieceTokenizer.minilm());
    }

    /** The same, from a command-line spec: "minilm" or a path to an .onnx file (tokenizer next to it). */
    public static BaseModel fromSpec(String spec, String tokenizer, int heads) throws IOException {
        if (spec.equals("minilm")) return miniLm();
        Path onnx = Path.of(spec);
        Path tok = tokenizer != null ? Path.of(tokenizer) : onnx.resolveSibling("tokenizer.json");
        var weights = OnnxWeights.read(onnx).bertWeights();
        return new BaseModel(spec, new BertEncoder(OnnxWeights.inferBertConfig(weights, heads, 1e-12), weights), WordPieceTokenizer.fromJson(tok));
    }
}
