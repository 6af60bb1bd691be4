package dev.moelora.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.onnx.OnnxWeights;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine;

/** {@code moelora forward} prints the encoder's hidden states under the documented JSON contract. */
class ForwardCommandTest {
    @Test
    void forwardPrintsShapeAndRowMajorHiddenStates() throws Exception {
        PrintStream saved = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int code;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            code = new CommandLine(new Main()).execute("forward", "--model", "minilm", "--ids", "101,7592,2088,102");
        } finally {
            System.setOut(saved);
        }
        assertEquals(0, code);
        JsonNode json = new ObjectMapper().readTree(out.toString(StandardCharsets.UTF_8));
        assertEquals(4, json.get("shape").get(0).asInt());
        assertEquals(384, json.get("shape").get(1).asInt());
        assertEquals(4 * 384, json.get("data").size());
        BertEncoder encoder = new BertEncoder(BertConfig.miniLmL6(), OnnxWeights.miniLm().bertWeights());
        INDArray expected = encoder.forward(new TokenBatch(1, 4, new int[] {101, 7592, 2088, 102}, new int[4], new float[] {1, 1, 1, 1}));
        assertEquals(expected.getFloat(2, 17), (float) json.get("data").get(2 * 384 + 17).asDouble(), 0f);
        assertEquals(expected.getFloat(3, 383), (float) json.get("data").get(3 * 384 + 383).asDouble(), 0f);
    }

    @Test
    void forwardWithoutInputIsAUsageError() {
        assertEquals(2, new CommandLine(new Main()).setErr(new java.io.PrintWriter(new ByteArrayOutputStream())).execute("forward"));
    }
}
