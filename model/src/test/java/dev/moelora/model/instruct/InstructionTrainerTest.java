package dev.moelora.model.instruct;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.AnswerKind;
import dev.moelora.model.data.Instruction;
import dev.moelora.model.data.InstructionDataset;
import dev.moelora.model.llama.LlamaCheckpoint;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.NextTokenLoss;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.optim.LrSchedule;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.tiedlora.TiedLora;
import dev.moelora.model.tiedlora.TiedLoraConfig;
import dev.moelora.model.tokenizer.BpeTokenizer;
import dev.moelora.model.train.TrainConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Every adapter family on the tiny golden LLaMA checkpoint, on all seven projections by their
 * Hugging Face names: step 0 is the base model, and a few instruction-tuning steps lower the loss.
 */
class InstructionTrainerTest {
    static final List<String> PROJECTIONS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    /** Sums of two digits, answered as in math_data.json's outputs. */
    static List<Instruction> sums(int n) {
        List<Instruction> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int a = i % 7 + 1, b = (i * 3) % 5 + 2;
            out.add(new Instruction("What is " + a + " + " + b + "?", "", a + " + " + b + " = " + (a + b), Integer.toString(a + b)));
        }
        return out;
    }

    static Adapters apply(String family, LlamaDecoder decoder) {
        return switch (family) {
            case "lora" -> Lora.adapters(decoder, new LoraConfig(4, 8, 0.0, PROJECTIONS), 3);
            case "tied-lora" -> TiedLora.apply(decoder, new TiedLoraConfig("tl6", 4, 8, 0.0, PROJECTIONS, false), 3);
            case "moelora" -> MoeLora.apply(decoder, new MoeLoraConfig(4, 2, 2, 8, 0.0, PROJECTIONS, 0.01, 0.1, 0.1, 16), 3);
            default -> throw new IllegalArgumentException(family);
        };
    }

    static TrainConfig config(int steps) {
        return new TrainConfig(steps, 4, 2, 1e-2, 0, LrSchedule.Decay.CONSTANT, 0.0, 1.0, 5, 8);
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "tied-lora", "moelora"})
    void everyFamilyAdaptsAllSevenProjectionsStartsAtTheBaseModelAndLowersTheLoss(String family) throws Exception {
        BpeTokenizer tok = InstructionEncoderTest.tinyTokenizer();
        LlamaDecoder decoder = LlamaCheckpoint.load(InstructionEncoderTest.tinyModel(), DataType.FLOAT);
        List<TokenizedInstruction> data = InstructionEncoder.encode(sums(12), tok, 64).sequences();
        InstructionBatch probe = InstructionBatch.of(data.subList(0, 3), 0);
        INDArray base = decoder.forward(probe.batch()).dup();

        Adapters adapters = apply(family, decoder);
        List<String> adapted = decoder.linears().stream().filter(l -> !(l instanceof dev.moelora.model.nn.FrozenLinear)).map(Linear::name).toList();
        assertEquals(2 * PROJECTIONS.size(), adapted.size(), "every projection of both layers is wrapped: " + adapted);
        for (String module : adapted) {
            assertTrue(adapters.parameters().stream().map(Parameter::name).anyMatch(p -> p.startsWith(module + ".")
                    || p.startsWith(module.replaceFirst("layers\\.\\d+\\.", "layers.*."))), module + " has no trained tensor");
        }
        adapters.setTraining(false);
        adapters.setRowMask(probe.batch().mask());
        INDArray step0 = decoder.forward(probe.batch());
        assertEquals(0.0, step0.sub(base).amaxNumber().doubleValue(), 1e-6, "step 0 equals the base model");

        InstructionTrainer trainer = new InstructionTrainer(decoder, adapters, data, config(12), true, 0);
        double before = meanLoss(decoder, adapters, data);
        List<Double> aux = new ArrayList<>();
        trainer.run(12, m -> {
            assertTrue(Double.isFinite(m.loss()) && m.tokens() > 0, m.toString());
            aux.add(m.auxLoss());
        });
        double after = meanLoss(decoder, adapters, data);
        assertTrue(after < 0.8 * before, family + ": loss " + before + " -> " + after);
        if (family.equals("moelora")) assertTrue(aux.stream().allMatch(a -> a > 0), "MoELoRA's balance and contrastive losses join the loss: " + aux);
        else assertTrue(aux.stream().allMatch(a -> a == 0), aux.toString());
    }

    /** The next-token loss over every response token of {@code data}, in evaluation mode, as one batch. Trains nothing. */
    static double meanLoss(LlamaDecoder decoder, Adapters adapters, List<TokenizedInstruction> data) {
        adapters.setTraining(false);
        InstructionBatch b = InstructionBatch.of(data, 0);
        adapters.setRowMask(b.batch().mask());
        INDArray logits = decoder.forward(b.batch());
        double loss = NextTokenLoss.forwardBackward(logits, b.batch(), b.lossMask(), logits.dup());
        adapters.takeAuxiliaryLoss();
        adapters.setRowMask(null);
        return loss;
    }

    @Test
    void mathEvaluationScoresEveryRecordByItsCompletionAndCountsPromptsTooLong() throws Exception {
        BpeTokenizer tok = InstructionEncoderTest.tinyTokenizer();
        LlamaDecoder decoder = LlamaCheckpoint.load(InstructionEncoderTest.tinyModel(), DataType.FLOAT);
        Adapters adapters = apply("moelora", decoder);
        List<Instruction> records = sums(3);
        var set = new InstructionDataset.MathTestSet("sums", AnswerKind.NUMBER, records);
        List<Integer> progress = new ArrayList<>();
        MathEvaluation.Score score = MathEvaluation.run(decoder, adapters, tok, set, 5, (task, done, total, correct) -> progress.add(done));
        assertEquals(List.of(1, 2, 3), progress);
        assertEquals(3, score.examples());
        assertEquals(score.predictions().stream().filter(MathEvaluation.Prediction::correct).count(), score.correct());
        for (MathEvaluation.Prediction p : score.predictions()) {
            assertEquals(MathAnswers.correct(AnswerKind.NUMBER, p.completion(), p.gold()), p.correct());
        }
        Function<Integer, String> longInstruction = n -> "1 ".repeat(n);
        var tooLong = new InstructionDataset.MathTestSet("long", AnswerKind.NUMBER, List.of(new Instruction(longInstruction.apply(80), "", "", "1")));
        MathEvaluation.Score s = MathEvaluation.run(decoder, adapters, tok, tooLong, 5, (task, done, total, correct) -> {});
        assertEquals(1, s.promptTooLong());
        assertEquals(0, s.correct());
    }
}
