package dev.moelora.model.task;

import static dev.moelora.model.nn.FiniteDifference.check;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.data.Example;
import dev.moelora.model.data.Task;
import dev.moelora.model.data.TaskFormat;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.lora.LoraLinear;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.moelora.MoeLoraRouting;
import dev.moelora.model.nn.FiniteDifference;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.tokenizer.WordPieceTokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The whole training step (tokens -> encoder -> LoRA or MoELoRA -> pooling -> heads -> loss)
 * against central finite differences in double ({@link FiniteDifference#check}: step 1e-6,
 * relative error |a - n| / max(1e-3, |a| + |n|) below 1e-5), for every trainable tensor.
 */
class TaskModelGradientTest {
    static final BertConfig TINY = new BertConfig(30522, 8, 2, 2, 12, 64, 2, 1e-12);

    static final Task CHOICE = new Task("pick", TaskFormat.MULTIPLE_CHOICE, List.of(),
            List.of(), List.of(new Example("which is a fruit?", List.of("apple", "chair", "red"), 0),
                    new Example("which is a color?", List.of("apple", "blue"), 1)));
    static final Task CLASSIFY = new Task("mood", TaskFormat.CLASSIFICATION, List.of("negative", "positive"),
            List.of(), List.of(new Example("what a lovely day", List.of("negative", "positive"), 1)));

    static final int SAMPLES = 8;

    @Test
    void lossGradientReachesAdaptersAndHeadsExactly() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 21);
        var adapters = Lora.adapters(encoder, new LoraConfig(2, 4, 0.0, List.of("query", "value")), 4);
        SplittableRandom random = new SplittableRandom(8);
        for (LoraLinear l : adapters.modules()) {
            var b = l.b().value();
            for (long i = 0; i < b.length(); i++) b.putScalar(i, random.nextDouble(-1, 1));
        }
        TaskHeads heads = new TaskHeads(TINY.hidden(), List.of(CHOICE, CLASSIFY), DataType.DOUBLE, 3);
        TaskModel model = new TaskModel(encoder, adapters, heads, WordPieceTokenizer.minilm(), 16, 3, 3, 2);
        List<TaskModel.Item> items = List.of(new TaskModel.Item(CHOICE, CHOICE.test().get(0)),
                new TaskModel.Item(CLASSIFY, CLASSIFY.test().get(0)), new TaskModel.Item(CHOICE, CHOICE.test().get(1)));

        TaskModel.Outcome out = model.trainStep(items, 1.0);
        assertEquals(model.evaluate(items).loss(), out.loss(), 1e-12, "evaluate and trainStep compute the same loss");
        List<Parameter> params = new ArrayList<>(adapters.parameters());
        params.addAll(heads.parameters());
        for (Parameter p : params) {
            check(p.name(), p.value(), p.grad().dup(), () -> model.evaluate(items).loss());
        }
    }

    /**
     * MoELoRA on query and value (E 4, top-2, r_e 2, random gates with wide logits, non-zero B),
     * heads included. The objective is what the trainer minimises: the task loss plus the modules'
     * auxiliary losses (lambda_bal 0.7, lambda_cl 0.9, M = 3 features per expert so that sampling
     * draws; padding tokens excluded by the row mask the model sets). Dropout 0; the adapters are
     * reseeded before every forward so that every perturbed forward samples the same features, and
     * every one asserts that the routing did not change. A forward through the MoELoRA modules is
     * slow enough that each tensor is checked on {@link #SAMPLES} entries (a fixed sample per name).
     */
    @Test
    void lossGradientReachesMoeLoraGatesExpertsAndHeadsExactly() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 21);
        MoeLoraAdapters adapters = MoeLora.apply(encoder, new MoeLoraConfig(4, 2, 2, 4, 0.0, List.of("query", "value"), 0.7, 0.9, 0.5, 3), 4);
        MoeLoraRouting.randomise(adapters, new SplittableRandom(8), 3);
        TaskHeads heads = new TaskHeads(TINY.hidden(), List.of(CHOICE, CLASSIFY), DataType.DOUBLE, 3);
        TaskModel model = new TaskModel(encoder, adapters, heads, WordPieceTokenizer.minilm(), 16, 3, 3, 2);
        List<TaskModel.Item> items = List.of(new TaskModel.Item(CHOICE, CHOICE.test().get(0)),
                new TaskModel.Item(CLASSIFY, CLASSIFY.test().get(0)), new TaskModel.Item(CHOICE, CHOICE.test().get(1)));

        adapters.reseed(1);
        model.trainStep(items, 1.0);
        double aux = adapters.takeAuxiliaryLoss();
        assertTrue(aux > 0, "the auxiliary losses are part of the objective: " + aux);
        List<int[]> routing = MoeLoraRouting.of(adapters);
        for (int[] r : routing) assertTrue(MoeLoraRouting.distinctExperts(r) > 2, "the routing uses more than k experts, so the gate matters");
        DoubleSupplier objective = () -> {
            adapters.reseed(1);
            double task = model.evaluate(items).loss();
            MoeLoraRouting.assertUnchanged(routing, adapters);
            return task + adapters.takeAuxiliaryLoss();
        };
        List<Parameter> params = new ArrayList<>(adapters.parameters());
        params.addAll(heads.parameters());
        for (Parameter p : params) check(p.name(), p.value(), p.grad().dup(), objective, SAMPLES);
    }

    @Test
    void lossScaleScalesTheGradientOfEveryAdapterAndHeadTensor() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.DOUBLE, 21);
        var adapters = Lora.adapters(encoder, new LoraConfig(2, 4, 0.0, List.of("query", "value")), 4);
        SplittableRandom random = new SplittableRandom(8);
        for (LoraLinear l : adapters.modules()) {
            var b = l.b().value();
            for (long i = 0; i < b.length(); i++) b.putScalar(i, random.nextDouble(-1, 1));
        }
        TaskHeads heads = new TaskHeads(TINY.hidden(), List.of(CHOICE, CLASSIFY), DataType.DOUBLE, 3);
        TaskModel model = new TaskModel(encoder, adapters, heads, WordPieceTokenizer.minilm(), 16, 2, 3, 2);
        List<TaskModel.Item> items = List.of(new TaskModel.Item(CHOICE, CHOICE.test().get(0)), new TaskModel.Item(CLASSIFY, CLASSIFY.test().get(0)));
        List<Parameter> params = new ArrayList<>(adapters.parameters());
        params.addAll(heads.parameters());
        model.trainStep(items, 1.0);
        List<INDArray> full = params.stream().map(p -> p.grad().dup()).toList();
        for (Parameter p : params) p.zeroGrad();
        model.trainStep(items, 0.25);
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            if (p.name().equals("head.choice.bias")) {
                // one bias added to every choice's score: softmax ignores it, its gradient sum(p - onehot) is 0 up to rounding
                assertTrue(full.get(i).amaxNumber().doubleValue() < 1e-12, p.name() + " has no gradient");
                continue;
            }
            assertTrue(full.get(i).amaxNumber().doubleValue() > 0, p.name() + " has a gradient to scale");
            double error = p.grad().sub(full.get(i).mul(0.25)).amaxNumber().doubleValue() / full.get(i).amaxNumber().doubleValue();
            assertTrue(error < 1e-12, p.name() + ": gradient at loss scale 0.25 is not 0.25 times the one at 1 (relative error " + error + ")");
        }
    }
}
