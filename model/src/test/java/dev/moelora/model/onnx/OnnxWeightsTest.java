package dev.moelora.model.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.onnx.proto.GraphProto;
import dev.moelora.model.onnx.proto.ModelProto;
import dev.moelora.model.onnx.proto.NodeProto;
import dev.moelora.model.onnx.proto.TensorProto;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

class OnnxWeightsTest {
    static byte[] minilm;

    @TempDir
    Path dir;

    @BeforeAll
    static void read() throws IOException {
        try (InputStream in = OnnxWeightsTest.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            minilm = in.readAllBytes();
        }
    }

    @Test
    void miniLmWeightsMapToEveryBertParameterWithPyTorchLayout() throws IOException {
        Map<String, INDArray> w = OnnxWeights.miniLm().bertWeights();
        BertConfig inferred = OnnxWeights.inferBertConfig(w, 12, 1e-12);
        assertEquals(BertConfig.miniLmL6(), inferred);
        // 6 layers x (6 weights + 6 biases + 4 LayerNorm) + 5 embedding tensors; position_ids (int64) is not a weight
        assertEquals(6 * 16 + 5, w.size());
        assertArrayEquals(new long[] {1536, 384}, w.get("encoder.layer.3.intermediate.dense.weight").shape());
        assertArrayEquals(new long[] {384, 1536}, w.get("encoder.layer.3.output.dense.weight").shape());
        long params = w.values().stream().mapToLong(INDArray::length).sum();
        long embeddings = (30522 + 512 + 2) * 384L + 2 * 384;
        long layer = 4 * (384 * 384 + 384) + (384 * 1536 + 1536) + (1536 * 384 + 384) + 4 * 384;
        // the model card's 22.7M also counts BERT's pooler (384 x 384 + 384), which this export does not contain
        assertEquals(embeddings + 6 * layer, params);
    }

    @Test
    void queryWeightIsTheTransposeOfTheMatMulInitializerFeedingTheQueryBiasAdd() throws IOException {
        ModelProto model = ModelProto.parseFrom(minilm);
        String matmulInput = null;
        for (NodeProto n : model.getGraph().getNodeList()) {
            if (n.getOpType().equals("Add") && n.getInputList().contains("encoder.layer.0.attention.self.query.bias")) {
                String product = n.getInputList().stream().filter(s -> !s.endsWith(".bias")).findFirst().orElseThrow();
                for (NodeProto m : model.getGraph().getNodeList()) {
                    if (m.getOutputList().contains(product)) matmulInput = m.getInput(1);
                }
            }
        }
        Map<String, INDArray> init = OnnxWeights.miniLm().initializers();
        INDArray raw = init.get(matmulInput);
        INDArray mapped = OnnxWeights.miniLm().bertWeights().get("encoder.layer.0.attention.self.query.weight");
        assertArrayEquals(new long[] {raw.size(1), raw.size(0)}, mapped.shape());
        assertArrayEquals(raw.transpose().dup('c').data().asFloat(), mapped.dup('c').data().asFloat(), "every entry, transposed");
    }

    @Test
    void truncatedOnnxFileIsAClearError() throws IOException {
        Path file = dir.resolve("cut.onnx");
        Files.write(file, Arrays.copyOf(minilm, 1_000_000));
        IOException e = assertThrows(IOException.class, () -> OnnxWeights.read(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void aFileThatIsNotOnnxIsAClearError() throws IOException {
        Path file = dir.resolve("notes.onnx");
        Files.writeString(file, "this is not a model");
        IOException e = assertThrows(IOException.class, () -> OnnxWeights.read(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void initializerWhoseRawDataDisagreesWithItsShapeIsRejected() throws IOException {
        TensorProto bad = TensorProto.newBuilder().setName("w").setDataType(1).addDims(2).addDims(3)
                .setRawData(com.google.protobuf.ByteString.copyFrom(new byte[20])).build();
        Path file = dir.resolve("bad.onnx");
        Files.write(file, ModelProto.newBuilder().setGraph(GraphProto.newBuilder().addInitializer(bad)).build().toByteArray());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OnnxWeights.read(file));
        assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("expected 24"), e.getMessage());
    }

    @Test
    void matMulWithoutANamedBiasCannotBeMappedAndSaysSo() throws IOException {
        TensorProto w = TensorProto.newBuilder().setName("onnx::MatMul_1").setDataType(1).addDims(1).addDims(1).addFloatData(2f).build();
        NodeProto mm = NodeProto.newBuilder().setOpType("MatMul").setName("mm").addInput("x").addInput("onnx::MatMul_1").addOutput("y").build();
        Path file = dir.resolve("nobias.onnx");
        Files.write(file, ModelProto.newBuilder().setGraph(GraphProto.newBuilder().addInitializer(w).addNode(mm)).build().toByteArray());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OnnxWeights.read(file).bertWeights());
        assertTrue(e.getMessage().contains("'mm'") && e.getMessage().contains("bias"), e.getMessage());
    }
}
