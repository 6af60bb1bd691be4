package dev.moelora.model.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.data.GeneratedSuite;
import dev.moelora.model.data.Task;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.moelora.RoutingStats;
import dev.moelora.model.onnx.OnnxWeights;
import dev.moelora.model.optim.LrSchedule;
import dev.moelora.model.task.TaskHeads;
import dev.moelora.model.task.TaskModel;
import dev.moelora.model.tiedlora.TiedLora;
import dev.moelora.model.tiedlora.TiedLoraConfig;
import dev.moelora.model.tokenizer.WordPieceTokenizer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Every adapter family and preset trains on MiniLM over the generated suite: the training task
 * loss falls. "Falls" means the mean task loss of the last 8 of 32 steps is below the mean of the first 8.
 */
class AdapterFamiliesTrainTest {
    static Map<String, INDArray> weights;
    static final List<Task> TASKS = GeneratedSuite.create(2, 64, 4);
    static final TrainConfig CONFIG = new TrainConfig(32, 8, 1, 5e-3, 3, LrSchedule.Decay.CONSTANT, 0.0, 1.0, 3, 8);

    @BeforeAll
    static void load() throws IOException {
        weights = OnnxWeights.miniLm().bertWeights();
    }

    static List<Double> train(java.util.function.Function<BertEncoder, Adapters> family) {
        return run(family).losses();
    }

    record Run(TaskModel model, Adapters adapters, List<Double> losses) {}

    /** Trains and records the task loss (the auxiliary losses of MoELoRA are not what "the model learns" means). */
    static Run run(java.util.function.Function<BertEncoder, Adapters> family) {
        BertEncoder encoder = new BertEncoder(BertConfig.miniLmL6(), weights); // shared safely: base weights are never written
        Adapters adapters = family.apply(encoder);
        TaskModel model = new TaskModel(encoder, adapters, new TaskHeads(384, TASKS, DataType.FLOAT, 4), WordPieceTokenizer.minilm(),
                32, 8, 4, 2);
        List<Double> losses = new ArrayList<>();
        new Trainer(model, TASKS, CONFIG).run(CONFIG.steps(), m -> losses.add(m.taskLoss()));
        return new Run(model, adapters, losses);
    }

    static void assertLossFalls(String what, List<Double> losses) {
        double first = losses.subList(0, 8).stream().mapToDouble(d -> d).average().orElseThrow();
        double last = losses.subList(losses.size() - 8, losses.size()).stream().mapToDouble(d -> d).average().orElseThrow();
        assertTrue(last < first, what + ": loss of the first 8 steps " + first + ", of the last 8 " + last);
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "vera", "tl1", "tl2", "tl3", "tl4", "tl5", "tl6"})
    void everyTiedLoraPresetTrains(String preset) {
        int rank = preset.equals("vera") ? 64 : 8;
        assertLossFalls(preset, train(e -> TiedLora.apply(e, new TiedLoraConfig(preset, rank, 16, 0.0, List.of("query", "value"), false), 5)));
    }

    static MoeLoraConfig moe(double contrastiveWeight) {
        return new MoeLoraConfig(8, 2, 1, 16, 0.0, List.of("query", "value"), 0.01, contrastiveWeight, 0.1, 32);
    }

    /**
     * The effective number of experts of a module, exp(entropy of the share of routed slots per
     * expert), over the real tokens of a held-out batch. Every token going to the same top-2
     * experts gives exactly 2; a uniform spread over 8 experts gives 8.
     */
    static double effectiveExperts(RoutingStats s) {
        double total = java.util.Arrays.stream(s.routedTokens()).sum(), h = 0;
        for (long r : s.routedTokens()) if (r > 0) h -= r / total * Math.log(r / total);
        return Math.exp(h);
    }

    @Test
    void moeLoraTrainsAndItsExpertsAreNotAllRoutedTheSameTokens() {
        Run run = run(e -> MoeLora.apply(e, moe(0.1), 5));
        assertLossFalls("moelora", run.losses());
        List<TaskModel.Item> heldOut = new ArrayList<>();
        for (Task t : TASKS) heldOut.add(new TaskModel.Item(t, t.test().get(0)));
        run.model().evaluate(heldOut);
        for (RoutingStats s : ((MoeLoraAdapters) run.adapters()).stats()) {
            // measure: effective number of experts > 3 in every adapted module (collapse onto one pair would give 2)
            assertTrue(effectiveExperts(s) > 3, s.module() + ": effective experts " + effectiveExperts(s)
                    + ", routed " + java.util.Arrays.toString(s.routedTokens()));
        }
    }

    @Test
    void contrastiveLossChangesWhatMoeLoraLearns() {
        Run with = run(e -> MoeLora.apply(e, moe(0.1), 5));
        Run without = run(e -> MoeLora.apply(e, moe(0.0), 5));
        assertTrue(!with.losses().equals(without.losses()), "task losses with and without the contrastive term are identical");
        INDArray a = with.adapters().parameters().get(1).value(), b = without.adapters().parameters().get(1).value();
        assertTrue(a.sub(b).amaxNumber().doubleValue() > 1e-6, "expert 0's A of the first module is the same with and without λ_cl");
    }

    @Test
    void tiedLoraWithASharedAcrossQkvTrains() {
        assertLossFalls("tl6 shared qkv", train(e -> TiedLora.apply(e,
                new TiedLoraConfig("tl6", 8, 16, 0.0, List.of("query", "key", "value"), true), 5)));
    }
}
