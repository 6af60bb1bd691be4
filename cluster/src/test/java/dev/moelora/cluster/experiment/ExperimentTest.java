package dev.moelora.cluster.experiment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The coordinator runs an experiment's runs in trainer actors and compares them. */
class ExperimentTest {
    @TempDir
    Path dir;

    @Test
    void coordinatorRunsEveryRunWithTheSameDataAndReportsFailuresWithoutStopping() throws Exception {
        Path file = dir.resolve("exp.conf");
        Files.writeString(file, """
                data.generated { train-per-task = 8, test-per-task = 4 }
                data.max-length = 24
                train { steps = 3, batch-size = 4, eval-batch-size = 4, warmup-steps = 1 }
                run.dir = "%s"
                experiment {
                  name = tiny
                  runs = [
                    { name = lora-r4, adapter { type = lora, rank = 4 } }
                    { name = probe, adapter { type = none } }
                    { name = broken, adapter { type = no-such-adapter } }
                  ]
                }
                """.formatted(dir.toString().replace("\\", "/")));
        Experiment.Plan plan = Experiment.load(file, List.of("train.seed=5"));
        assertEquals(3, plan.runs().size());
        assertEquals(5, plan.runs().get(1).config().integer("train.seed"), "--set applies to every run");
        assertEquals(4, plan.runs().get(0).config().integer("adapter.rank"));

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        List<TrainerActor.Reply> outcomes = Experiment.run(plan.runs(), dev.moelora.cluster.cli.Jobs::run, new PrintStream(log, true, StandardCharsets.UTF_8));
        assertEquals(3, outcomes.size());
        assertInstanceOf(TrainerActor.Trained.class, outcomes.get(0));
        assertInstanceOf(TrainerActor.Trained.class, outcomes.get(1));
        TrainerActor.TrainingFailed failed = assertInstanceOf(TrainerActor.TrainingFailed.class, outcomes.get(2));
        assertTrue(failed.error().contains("adapter.type"), failed.error());

        String table = Experiment.report(outcomes, plan.dir());
        assertTrue(table.contains("| lora-r4 | LoRA r=4"), table);
        assertTrue(table.contains("| broken | failed:"), table);
        JsonNode json = new ObjectMapper().readTree(dir.resolve("tiny/comparison.json").toFile());
        // LoRA r=4 on query and value of 6 layers: 12 modules x 4 x (384 + 384), plus the same heads as the probe
        long heads = json.get(1).get("trainable_parameters").asLong();
        assertEquals(12L * 4 * (384 + 384) + heads, json.get(0).get("trainable_parameters").asLong());
        assertTrue(Files.isRegularFile(dir.resolve("tiny/lora-r4/adapter/adapter_model.safetensors")));
        assertTrue(Files.isRegularFile(dir.resolve("tiny/probe/eval.json")));
    }

    @Test
    void anExpertParallelRunReportsTheSameAdapterAndTrainableParametersAsItsSingleProcessTwin() throws Exception {
        Path file = dir.resolve("twins.conf");
        Files.writeString(file, """
                data.generated { train-per-task = 8, test-per-task = 4 }
                data.max-length = 24
                adapter { type = moelora, experts = 4, expert-rank = 2 }
                train { steps = 2, batch-size = 4, eval-batch-size = 4, warmup-steps = 1 }
                run.dir = "%s"
                experiment {
                  name = twins
                  runs = [
                    { name = single }
                    { name = local, runtime { mode = local, expert-nodes = 2 } }
                  ]
                }
                """.formatted(dir.toString().replace("\\", "/")));
        Experiment.Plan plan = Experiment.load(file, List.of());
        List<TrainerActor.Reply> outcomes = Experiment.run(plan.runs(), dev.moelora.cluster.cli.Jobs::run,
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
        var single = assertInstanceOf(TrainerActor.Trained.class, outcomes.get(0)).result();
        var local = assertInstanceOf(TrainerActor.Trained.class, outcomes.get(1)).result();
        // 12 modules (query, value of 6 layers), each a 4 x 384 gate and 4 experts of rank 2 on 384 -> 384, plus the heads
        long heads = single.trainableParameters() - 12L * (4 * 384 + 4 * 2 * (384 + 384));
        assertTrue(heads > 0 && heads < 10_000, "heads: " + heads);
        assertEquals(single.trainableParameters(), local.trainableParameters());
        assertTrue(local.adapter().startsWith(single.adapter() + " (expert-parallel, runtime local"), local.adapter());
        assertEquals(single.scores(), local.scores(), "the same evaluation, bit for bit");
        Experiment.report(outcomes, plan.dir());
        JsonNode json = new ObjectMapper().readTree(dir.resolve("twins/comparison.json").toFile());
        assertEquals(single.trainableParameters(), json.get(1).get("trainable_parameters").asLong(), "the table's count for the local run");
    }

    @Test
    void experimentWithoutRunsOrWithDuplicateNamesIsRejected() throws Exception {
        Path none = dir.resolve("none.conf");
        Files.writeString(none, "train.steps = 3\n");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Experiment.load(none, List.of())).getMessage().contains("experiment.runs"));
        Path twice = dir.resolve("twice.conf");
        Files.writeString(twice, "experiment.runs = [ { name = a }, { name = a } ]\n");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Experiment.load(twice, List.of())).getMessage().contains("'a'"));
        Path typo = dir.resolve("typo.conf");
        Files.writeString(typo, "experiment.runs = [ { name = a, adapter.rnak = 3 } ]\n");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Experiment.load(typo, List.of())).getMessage().contains("adapter.rnak"));
    }
}
