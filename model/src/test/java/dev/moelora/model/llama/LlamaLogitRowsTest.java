package dev.moelora.model.llama;

import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.moelora.MoeLoraRouting;
import dev.moelora.model.optim.Parameter;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The LM head on the counted rows only ({@code forward(batch, rows)}, {@code forwardBackwardRows},
 * backward from (R, V)) gives the loss and every adapter gradient of the full path, which the
 * golden and finite-difference tests check; in double, on the plain and the biased tiny decoder,
 * with LoRA and with MoELoRA (whose auxiliary losses still reach the adapters when no row counts).
 */
class LlamaLogitRowsTest {
    /** Two sequences of 5 tokens, the second right-padded; responses of 2 and 1 tokens. */
    static final DecoderBatch BATCH = new DecoderBatch(2, 5, new int[] {1, 5, 7, 3, 2, 1, 9, 4, 6, 0},
            new float[] {1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
    static final float[] LOSS_MASK = {0, 0, 0, 1, 1, 0, 0, 1, 0, 0};

    record Result(double loss, List<double[]> grads) {}

    private static Result full(LlamaDecoder decoder, List<Parameter> params, float[] lossMask) {
        params.forEach(Parameter::zeroGrad);
        INDArray logits = decoder.forward(BATCH);
        double loss = NextTokenLoss.forwardBackward(logits, BATCH, lossMask, logits);
        decoder.backward(logits);
        return new Result(loss, grads(params));
    }

    private static Result rows(LlamaDecoder decoder, List<Parameter> params, float[] lossMask) {
        params.forEach(Parameter::zeroGrad);
        int[] rows = NextTokenLoss.countedRows(BATCH, lossMask);
        INDArray logits = decoder.forward(BATCH, rows);
        double loss = NextTokenLoss.forwardBackwardRows(logits, BATCH, rows, logits);
        decoder.backward(logits);
        return new Result(loss, grads(params));
    }

    private static List<double[]> grads(List<Parameter> params) {
        List<double[]> out = new ArrayList<>();
        for (Parameter p : params) out.add(p.grad().dup().data().asDouble());
        return out;
    }

    private static void assertSame(Result expected, Result actual, List<Parameter> params) {
        assertEquals(expected.loss(), actual.loss(), 1e-13 * Math.max(1, Math.abs(expected.loss())), "loss");
        double largest = 0;
        for (int i = 0; i < params.size(); i++) {
            double[] e = expected.grads().get(i), a = actual.grads().get(i);
            for (int j = 0; j < e.length; j++) {
                largest = Math.max(largest, Math.abs(e[j]));
                assertEquals(e[j], a[j], 1e-12, params.get(i).name() + "[" + j + "]");
            }
        }
        assertTrue(largest > 1e-3, "the gradients are not all zero: " + largest);
    }

    private static LlamaConfig config(String which) {
        return which.equals("biased") ? LlamaDecoderGradientTest.BIASED : LlamaDecoderGradientTest.TINY;
    }

    @ParameterizedTest
    @ValueSource(strings = {"plain", "biased"})
    void loraOnEveryProjectionGetsTheFullPathsLossAndGradients(String which) {
        LlamaDecoder decoder = LlamaDecoder.random(config(which), DataType.DOUBLE, 4);
        List<Parameter> params = Lora.parameters(Lora.apply(decoder, new LoraConfig(2, 4, 0, LlamaDecoderGradientTest.ALL_PROJECTIONS), 1));
        SplittableRandom random = new SplittableRandom(9);
        for (Parameter p : params) p.value().assign(random(random, p.value().shape()).muli(0.5));
        assertSame(full(decoder, params, LOSS_MASK), rows(decoder, params, LOSS_MASK), params);
    }

    @ParameterizedTest
    @ValueSource(strings = {"counted", "none counted"})
    void moeLoraGetsTheFullPathsLossAndGradientsEvenWhenNoRowCounts(String mask) {
        LlamaDecoder decoder = LlamaDecoder.random(LlamaDecoderGradientTest.BIASED, DataType.DOUBLE, 4);
        MoeLoraAdapters adapters = MoeLora.apply(decoder,
                new MoeLoraConfig(3, 2, 2, 4, 0, List.of("q_proj", "v_proj", "down_proj"), 0.5, 0.5, 0.5, 8), 1);
        MoeLoraRouting.randomise(adapters, new SplittableRandom(5), 2);
        adapters.setRowMask(BATCH.mask());
        List<Parameter> params = adapters.parameters();
        float[] lossMask = mask.equals("counted") ? LOSS_MASK : new float[LOSS_MASK.length];
        Result expected = full(decoder, params, lossMask);
        adapters.takeAuxiliaryLoss();
        Result actual = rows(decoder, params, lossMask);
        if (lossMask != LOSS_MASK) assertEquals(0.0, actual.loss(), 0.0);
        assertSame(expected, actual, params);
    }

    @Test
    void theLogitsOfTheListedRowsAreThoseOfTheFullForward() {
        LlamaDecoder decoder = LlamaDecoder.random(LlamaDecoderGradientTest.BIASED, DataType.DOUBLE, 4);
        INDArray all = decoder.forward(BATCH).dup();
        int[] rows = {2, 3, 6};
        INDArray some = decoder.forward(BATCH, rows);
        assertEquals(3, some.size(0));
        for (int j = 0; j < rows.length; j++) {
            assertEquals(0.0, all.getRow(rows[j]).sub(some.getRow(j)).amaxNumber().doubleValue(), 1e-12, "row " + rows[j]);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> decoder.forward(BATCH, new int[] {3, 2}));
        assertTrue(e.getMessage().contains("ascend"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> decoder.forward(BATCH, new int[] {10}));
        decoder.forward(BATCH, rows);
        assertThrows(IllegalArgumentException.class, () -> decoder.backward(Nd4j.zeros(DataType.DOUBLE, BATCH.rows(), 11)),
                "backward wants the (R, V) of the rows forward computed");
    }
}
