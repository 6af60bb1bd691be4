package dev.moelora.model.lora;

import static dev.moelora.model.nn.FiniteDifference.check;
import static dev.moelora.model.nn.FiniteDifference.dot;
import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.optim.Parameter;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** LoRA's forward and backward, alone and inside the encoder, against finite differences. */
class LoraGradientTest {
    final SplittableRandom random = new SplittableRandom(3);
    static final BertConfig TINY = new BertConfig(20, 8, 2, 2, 12, 16, 2, 1e-12);

    @Test
    void loraLinearBackwardMatchesFiniteDifferences() {
        FrozenLinear base = new FrozenLinear("m", random(random, 3, 4), random(random, 3));
        LoraLinear lora = new LoraLinear(base, random(random, 2, 4), random(random, 3, 2), 1.5, 0.0, 1);
        INDArray x = random(random, 5, 4), r = random(random, 5, 3), y = Nd4j.create(DataType.DOUBLE, 5, 3);
        lora.forward(x, y);
        INDArray expected = x.mmul(base.weight().transpose()).addRowVector(base.bias())
                .addi(x.mmul(lora.a().value().transpose()).mmul(lora.b().value().transpose()).muli(1.5));
        assertEquals(0.0, expected.sub(y).amaxNumber().doubleValue(), 1e-12, "y = W x + b + s B A x");
        INDArray dx = Nd4j.create(DataType.DOUBLE, 5, 4);
        lora.backward(r, dx, false);
        check("lora dA", lora.a().value(), lora.a().grad(), () -> { lora.forward(x, y); return dot(y, r); });
        check("lora dB", lora.b().value(), lora.b().grad(), () -> { lora.forward(x, y); return dot(y, r); });
        check("lora dx", x, dx, () -> { lora.forward(x, y); return dot(y, r); });
    }

    /**
     * dA, dB and dx with dropout 0.5 against finite differences. The module restarts its dropout
     * stream with {@link LoraLinear#reseed} before the analytic forward and before every perturbed
     * one, so all of them draw the same mask and the loss is a function of x, A and B alone.
     */
    @Test
    void loraWithDropoutBackpropagatesThroughTheSameMask() {
        FrozenLinear base = new FrozenLinear("m", random(random, 3, 4), random(random, 3));
        LoraLinear lora = new LoraLinear(base, random(random, 2, 4), random(random, 3, 2), 2.0, 0.5, 99);
        INDArray x = random(random, 6, 4), r = random(random, 6, 3), y = Nd4j.create(DataType.DOUBLE, 6, 3);
        DoubleSupplier loss = () -> {
            lora.reseed(42);
            lora.forward(x, y);
            return dot(y, r);
        };
        loss.getAsDouble();
        INDArray dx = Nd4j.create(DataType.DOUBLE, 6, 4);
        lora.backward(r, dx, false);
        INDArray trained = y.dup();
        check("dropout lora dA", lora.a().value(), lora.a().grad(), loss);
        check("dropout lora dB", lora.b().value(), lora.b().grad(), loss);
        check("dropout lora dx", x, dx, loss);

        INDArray a = lora.a().value(), b = lora.b().value();
        INDArray eval = x.mmul(base.weight().transpose()).addRowVector(base.bias()).addi(x.mmul(a.transpose()).mmul(b.transpose()).muli(2.0));
        assertTrue(eval.sub(trained).amaxNumber().doubleValue() > 1e-3, "the mask drops something: training differs from evaluation");
        lora.setTraining(false);
        lora.forward(x, y);
        assertEquals(0.0, eval.sub(y).amaxNumber().doubleValue(), 1e-12, "no dropout outside training");
    }

    static TokenBatch tinyBatch() {
        return new TokenBatch(2, 4, new int[] {1, 5, 7, 2, 1, 9, 2, 0}, new int[] {0, 0, 1, 1, 0, 0, 1, 0},
                new float[] {1, 1, 1, 1, 1, 1, 1, 0});
    }

    @Test
    void freshLoraLeavesTheEncoderOutputUnchanged() {
        BertEncoder plain = BertEncoder.random(TINY, DataType.DOUBLE, 5);
        INDArray before = plain.forward(tinyBatch()).dup();
        BertEncoder adapted = BertEncoder.random(TINY, DataType.DOUBLE, 5);
        Lora.apply(adapted, new LoraConfig(4, 8, 0.0, List.of("query", "value")), 1);
        assertEquals(0.0, adapted.forward(tinyBatch()).sub(before).amaxNumber().doubleValue(), 0.0, "B = 0 at step 0");
    }

    @Test
    void encoderWithLoraOnEveryModuleMatchesFiniteDifferences() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 11);
        List<LoraLinear> adapters = Lora.apply(encoder, new LoraConfig(2, 4, 0.0,
                List.of("query", "key", "value", "attention.output.dense", "intermediate.dense", "re:.*\\.output\\.dense")), 2);
        assertEquals(12, adapters.size());
        for (LoraLinear l : adapters) l.b().value().assign(random(random, l.b().value().shape()));
        TokenBatch batch = tinyBatch();
        INDArray r = random(random, batch.rows(), TINY.hidden());
        for (int t = 0; t < TINY.hidden(); t++) r.putScalar(7, t, 0.0); // the padded row's output is not used
        assertThrows(IllegalStateException.class, () -> encoder.backward(r), "backward needs a forward first");
        encoder.forward(batch);
        encoder.backward(r);
        for (Parameter p : Lora.parameters(adapters)) {
            check(p.name(), p.value(), p.grad().dup(), () -> dot(encoder.forward(batch), r));
        }
    }

    @Test
    void targetsThatMatchNothingAreAnError() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 1);
        var e = assertThrows(IllegalArgumentException.class, () -> Lora.apply(encoder, new LoraConfig(2, 4, 0, List.of("q_proj")), 1));
        assertEquals(true, e.getMessage().contains("q_proj") && e.getMessage().contains("encoder.layer.0.attention.self.query"), e.getMessage());
    }
}
