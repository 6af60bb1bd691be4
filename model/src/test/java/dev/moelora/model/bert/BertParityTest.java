package dev.moelora.model.bert;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.moelora.model.onnx.OnnxWeights;
import java.io.InputStream;
import java.nio.LongBuffer;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Our MiniLM forward against ONNX Runtime running the same ONNX file. */
class BertParityTest {
    static BertEncoder encoder;
    static byte[] onnxBytes;

    @BeforeAll
    static void load() throws Exception {
        try (InputStream in = BertParityTest.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            onnxBytes = in.readAllBytes();
        }
        encoder = new BertEncoder(BertConfig.miniLmL6(), OnnxWeights.read(new java.io.ByteArrayInputStream(onnxBytes), "minilm").bertWeights());
    }

    static float[][] onnxRuntime(TokenBatch batch) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession session = env.createSession(onnxBytes, new OrtSession.SessionOptions())) {
            long[] shape = {batch.batch(), batch.tokens()};
            long[] ids = new long[batch.rows()], types = new long[batch.rows()], mask = new long[batch.rows()];
            for (int i = 0; i < batch.rows(); i++) {
                ids[i] = batch.ids()[i];
                types[i] = batch.typeIds()[i];
                mask[i] = (long) batch.mask()[i];
            }
            try (OnnxTensor tIds = OnnxTensor.createTensor(env, LongBuffer.wrap(ids), shape);
                 OnnxTensor tMask = OnnxTensor.createTensor(env, LongBuffer.wrap(mask), shape);
                 OnnxTensor tTypes = OnnxTensor.createTensor(env, LongBuffer.wrap(types), shape);
                 OrtSession.Result r = session.run(Map.of("input_ids", tIds, "attention_mask", tMask, "token_type_ids", tTypes))) {
                float[][][] out = (float[][][]) r.get(0).getValue();
                float[][] flat = new float[batch.rows()][];
                for (int b = 0; b < batch.batch(); b++) for (int t = 0; t < batch.tokens(); t++) flat[b * batch.tokens() + t] = out[b][t];
                return flat;
            }
        }
    }

    /** Compares every real (unpadded) token's hidden state; returns the largest relative error. */
    static double maxRelativeError(INDArray ours, float[][] reference, float[] mask) {
        double worst = 0;
        for (int i = 0; i < reference.length; i++) {
            if (mask[i] == 0f) continue;
            for (int c = 0; c < reference[i].length; c++) {
                double a = ours.getDouble(i, c), b = reference[i][c];
                worst = Math.max(worst, Math.abs(a - b) / Math.max(1.0, Math.abs(b)));
            }
        }
        return worst;
    }

    @Test
    void helloWorldMatchesOnnxRuntime() throws Exception {
        TokenBatch batch = new TokenBatch(1, 4, new int[] {101, 7592, 2088, 102}, new int[4], new float[] {1, 1, 1, 1});
        double err = maxRelativeError(encoder.forward(batch), onnxRuntime(batch), batch.mask());
        assertTrue(err < 1e-4, "max relative error " + err);
    }

    @Test
    void paddedBatchWithTokenTypesMatchesOnnxRuntime() throws Exception {
        SplittableRandom random = new SplittableRandom(7);
        int B = 3, T = 17;
        int[] ids = new int[B * T], types = new int[B * T];
        float[] mask = new float[B * T];
        int[] lengths = {17, 9, 4};
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < lengths[b]; t++) {
                ids[b * T + t] = t == 0 ? 101 : t == lengths[b] - 1 ? 102 : 1000 + random.nextInt(29000);
                types[b * T + t] = t > lengths[b] / 2 ? 1 : 0;
                mask[b * T + t] = 1f;
            }
        }
        TokenBatch batch = new TokenBatch(B, T, ids, types, mask);
        double err = maxRelativeError(encoder.forward(batch), onnxRuntime(batch), mask);
        assertTrue(err < 1e-4, "max relative error " + err);
    }

    @Test
    void paddingDoesNotChangeRealTokens() {
        TokenBatch alone = new TokenBatch(1, 4, new int[] {101, 7592, 2088, 102}, new int[4], new float[] {1, 1, 1, 1});
        INDArray a = encoder.forward(alone).dup();
        TokenBatch padded = new TokenBatch(1, 7, new int[] {101, 7592, 2088, 102, 0, 0, 0}, new int[7], new float[] {1, 1, 1, 1, 0, 0, 0});
        INDArray p = encoder.forward(padded);
        for (int t = 0; t < 4; t++) {
            for (int c = 0; c < 384; c++) assertEquals(a.getDouble(t, c), p.getDouble(t, c), 1e-5);
        }
    }
}
