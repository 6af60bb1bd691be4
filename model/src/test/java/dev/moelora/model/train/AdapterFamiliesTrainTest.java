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
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Every adapter family and preset learns on MiniLM over the generated suite, and learns more than
 * the task heads alone. The heads train together with the adapter, and a linear probe on the frozen
 * encoder lowers the loss by itself, so "the loss falls" says nothing about the adapter. The measure
 * here is paired: the mean task loss over the last 8 of 32 steps must be below that of a heads-only
 * probe ({@link Adapters#NONE}: frozen encoder, only the heads train) on the same tasks, seed, steps,
 * batches and learning rate, by a margin. An adapter whose backward is zero or a no-op keeps its B
 * (or v) at 0, so its run is the probe's run and the gap is 0.
 *
 * <p>Measured gaps (probe minus adapter, last-8 mean task loss; probe 0.836 at lr 5e-3, 0.788 at
 * 2e-2): lora 0.216, tl5 0.188, tl6 0.191, tl6 with A shared by q, k, v 0.213, MoELoRA 0.264;
 * tl1 0.061, tl2 0.062, tl3 0.065, tl4 0.067 (a frozen random A: only B and the scales learn);
 * vera 0.096 at alpha 1024 and lr 2e-2. At the shared alpha 16 and lr 5e-3 vera's gap is 0.0001:
 * it trains only u and v, v starts at 0, and 32 steps of 5e-3 move its output by ~1e-3. Margins:
 * 0.1 where both low-rank factors train, 0.03 where only B or only the scales do. With every
 * factor's gradient zeroed every test here fails at gap 0.0000; with only dA zeroed, tl5 and tl6
 * fall to tl1's and tl4's gaps (0.061, 0.067) and fail, while the per-layer lora preset keeps
 * 0.135 (B alone learns that much) and passes: a wrong part of a gradient is the finite-difference
 * checks' to find, an adapter that does not learn is this test's.
 */
class AdapterFamiliesTrainTest {
    static Map<String, INDArray> weights;
    static final List<Task> TASKS = GeneratedSuite.create(2, 64, 4);
    static final double LR = 5e-3;
    static final double FULL_MARGIN = 0.1, PARTIAL_MARGIN = 0.03;

    static TrainConfig config(double lr) {
        return new TrainConfig(32, 8, 1, lr, 3, LrSchedule.Decay.CONSTANT, 0.0, 1.0, 3, 8);
    }

    @BeforeAll
    static void load() throws IOException {
        weights = OnnxWeights.miniLm().bertWeights();
    }

    record Run(TaskModel model, Adapters adapters, List<Double> losses) {
        /** The mean task loss of the last 8 steps. */
        double lastLoss() {
            return losses.subList(losses.size() - 8, losses.size()).stream().mapToDouble(d -> d).average().orElseThrow();
        }
    }

    /** Trains and records the task loss (the auxiliary losses of MoELoRA are not what "the model learns" means). */
    static Run run(Function<BertEncoder, Adapters> family, double lr) {
        BertEncoder encoder = new BertEncoder(BertConfig.miniLmL6(), weights); // shared safely: base weights are never written
        Adapters adapters = family.apply(encoder);
        TaskModel model = new TaskModel(encoder, adapters, new TaskHeads(384, TASKS, DataType.FLOAT, 4), WordPieceTokenizer.minilm(),
                32, 8, 4, 2);
        List<Double> losses = new ArrayList<>();
        TrainConfig config = config(lr);
        new Trainer(model, TASKS, config).run(config.steps(), m -> losses.add(m.taskLoss()));
        return new Run(model, adapters, losses);
    }

    static final Map<Double, Run> PROBES = new HashMap<>();

    /** The heads-only run at this learning rate, trained once and shared by every test. */
    static synchronized Run probe(double lr) {
        return PROBES.computeIfAbsent(lr, r -> run(e -> Adapters.NONE, r));
    }

    static void assertBeatsTheProbe(String what, Run run, double lr, double margin) {
        double heads = probe(lr).lastLoss(), adapter = run.lastLoss();
        System.out.printf(Locale.ROOT, "%s: last-8 task loss %.4f, heads-only probe %.4f, gap %.4f (margin %.2f)%n",
                what, adapter, heads, heads - adapter, margin);
        assertTrue(adapter < heads - margin, what + ": last-8 mean task loss " + adapter + " is not " + margin
                + " below the heads-only probe's " + heads + " (same data, seed, steps, lr " + lr + ")");
    }

    /** Rank, alpha, learning rate, and the margin over the probe, per preset. */
    record Setting(int rank, double alpha, double lr, double margin) {}

    static final Map<String, Setting> PRESETS = Map.of(
            "lora", new Setting(8, 16, LR, FULL_MARGIN),
            "vera", new Setting(64, 1024, 2e-2, PARTIAL_MARGIN),
            "tl1", new Setting(8, 16, LR, PARTIAL_MARGIN),
            "tl2", new Setting(8, 16, LR, PARTIAL_MARGIN),
            "tl3", new Setting(8, 16, LR, PARTIAL_MARGIN),
            "tl4", new Setting(8, 16, LR, PARTIAL_MARGIN),
            "tl5", new Setting(8, 16, LR, FULL_MARGIN),
            "tl6", new Setting(8, 16, LR, FULL_MARGIN));

    @ParameterizedTest
    @ValueSource(strings = {"lora", "vera", "tl1", "tl2", "tl3", "tl4", "tl5", "tl6"})
    void everyTiedLoraPresetLearnsMoreThanTheHeadsAlone(String preset) {
        Setting s = PRESETS.get(preset);
        Run run = run(e -> TiedLora.apply(e, new TiedLoraConfig(preset, s.rank(), s.alpha(), 0.0, List.of("query", "value"), false), 5), s.lr());
        assertBeatsTheProbe(preset, run, s.lr(), s.margin());
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
    void moeLoraLearnsMoreThanTheHeadsAloneAndItsExpertsAreNotAllRoutedTheSameTokens() {
        Run run = run(e -> MoeLora.apply(e, moe(0.1), 5), LR);
        assertBeatsTheProbe("moelora", run, LR, FULL_MARGIN);
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
        Run with = run(e -> MoeLora.apply(e, moe(0.1), 5), LR);
        Run without = run(e -> MoeLora.apply(e, moe(0.0), 5), LR);
        assertTrue(!with.losses().equals(without.losses()), "task losses with and without the contrastive term are identical");
        INDArray a = with.adapters().parameters().get(1).value(), b = without.adapters().parameters().get(1).value();
        assertTrue(a.sub(b).amaxNumber().doubleValue() > 1e-6, "expert 0's A of the first module is the same with and without λ_cl");
    }

    @Test
    void tiedLoraWithASharedAcrossQkvLearnsMoreThanTheHeadsAlone() {
        Run run = run(e -> TiedLora.apply(e, new TiedLoraConfig("tl6", 8, 16, 0.0, List.of("query", "key", "value"), true), 5), LR);
        assertBeatsTheProbe("tl6 shared qkv", run, LR, FULL_MARGIN);
    }
}
