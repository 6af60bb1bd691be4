package dev.moelora.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.cli.Jobs;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.model.data.SharedData;
import dev.moelora.model.train.AdapterStore;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The train command's job on real data and its configuration errors. */
class TrainJobTest {
    @TempDir
    Path dir;

    @Test
    void smokeRunOnArcEasyTrainsSavesAndEvaluates() throws Exception {
        Optional<Path> data = SharedData.root();
        assumeTrue(data.isPresent() && Files.isDirectory(data.get().resolve("llm-adapters/dataset/ARC-Easy")), "no ../shared/data");
        RunConfig config = RunConfig.load(null, List.of(
                "data.source=llm-adapters", "data.llm-adapters.root=" + data.get().resolve("llm-adapters/dataset"),
                "data.llm-adapters.tasks=[ARC-Easy]", "data.llm-adapters.max-train-per-task=24",
                "data.llm-adapters.max-test-per-task=16", "data.max-length=64", "train.steps=4", "train.batch-size=4",
                "train.eval-batch-size=4", "train.warmup-steps=1", "checkpoint.every=2", "run.dir=" + dir, "run.name=arc"));
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        JobResult result = Jobs.run(config, new PrintStream(log, true, StandardCharsets.UTF_8), false);
        String printed = log.toString(StandardCharsets.UTF_8);

        assertTrue(printed.contains("| ARC-Easy | 16 |"), printed);
        assertEquals(4, result.losses().size());
        assertEquals(4, Files.readAllLines(dir.resolve("arc/metrics.jsonl")).size());
        JsonNode eval = new ObjectMapper().readTree(dir.resolve("arc/eval.json").toFile());
        assertEquals("ARC-Easy", eval.get(0).get("task").asText());
        assertEquals(16, eval.get(0).get("examples").asInt());
        for (String f : List.of(AdapterStore.ADAPTER, AdapterStore.CONFIG)) {
            assertTrue(Files.isRegularFile(dir.resolve("arc/adapter").resolve(f)), f);
        }
        assertEquals("step-000004", Files.readString(dir.resolve("arc/checkpoints/latest")).trim());
        assertTrue(Files.isRegularFile(dir.resolve("arc/checkpoints/step-000002/manifest.pb")), "the checkpoint of step 2 is kept");
    }

    @Test
    void resumingWithSettingsThatChangeTheAdapterIsRefusedNamingEveryKeyThatDiffers() throws Exception {
        List<String> tiny = List.of("data.generated.train-per-task=8", "data.generated.test-per-task=2", "data.max-length=16",
                "train.batch-size=2", "train.eval-batch-size=4", "train.warmup-steps=0", "train.steps=2", "run.dir=" + dir);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        List<String> first = new java.util.ArrayList<>(tiny);
        first.add("run.name=first");
        Jobs.run(RunConfig.load(null, first), quiet, false);
        String saved = dir.resolve("first/checkpoints/step-000002").toString();

        List<String> other = new java.util.ArrayList<>(tiny);
        other.addAll(List.of("run.name=other", "run.resume-from=" + saved, "adapter.rank=4", "train.lr=0.01"));
        var e = assertThrows(IllegalArgumentException.class, () -> Jobs.run(RunConfig.load(null, other), quiet, false));
        assertTrue(e.getMessage().contains("adapter.rank = 8 -> 4") && e.getMessage().contains("train.lr = 0.002 -> 0.01")
                && e.getMessage().contains(saved), e.getMessage());
        assertTrue(!Files.exists(dir.resolve("other/adapter")) && !Files.exists(dir.resolve("other/checkpoints")),
                "nothing was saved by the refused run");

        // more steps, other checkpoint settings, another run directory: the same adapter, continued
        List<String> longer = new java.util.ArrayList<>(tiny);
        longer.addAll(List.of("run.name=longer", "run.resume-from=" + saved, "train.steps=3", "checkpoint.every=1"));
        JobResult r = Jobs.run(RunConfig.load(null, longer), quiet, false);
        assertEquals(1, r.losses().size(), "resumed at step 2 of 3");

        List<String> again = new java.util.ArrayList<>(tiny);
        again.add("run.name=first");
        var fresh = assertThrows(IllegalArgumentException.class, () -> Jobs.run(RunConfig.load(null, again), quiet, false));
        assertTrue(fresh.getMessage().contains("already holds checkpoints") && fresh.getMessage().contains("run.resume-from = latest"),
                fresh.getMessage());
        List<String> adapterDir = new java.util.ArrayList<>(tiny);
        adapterDir.addAll(List.of("run.name=from-adapter", "run.resume-from=" + dir.resolve("first/adapter")));
        var notCheckpoint = assertThrows(IllegalArgumentException.class, () -> Jobs.run(RunConfig.load(null, adapterDir), quiet, false));
        assertTrue(notCheckpoint.getMessage().contains("is not a checkpoint step directory"), notCheckpoint.getMessage());
    }

    @Test
    void unknownConfigKeyIsRejectedWithItsOrigin() {
        var e = assertThrows(IllegalArgumentException.class, () -> RunConfig.load(null, List.of("train.stpes=5")));
        assertTrue(e.getMessage().contains("train.stpes") && e.getMessage().contains("--set"), e.getMessage());
    }

    @Test
    void unknownKeyInAConfigFileNamesTheFile() throws Exception {
        Path file = dir.resolve("run.conf");
        Files.writeString(file, "adapter { rank = 4, rnak = 8 }\n");
        var e = assertThrows(IllegalArgumentException.class, () -> RunConfig.load(file, List.of()));
        assertTrue(e.getMessage().contains("adapter.rnak") && e.getMessage().contains("run.conf"), e.getMessage());
    }

    @Test
    void malformedSetAndMissingFileAreClearErrors() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RunConfig.load(null, List.of("train.steps")))
                .getMessage().contains("key=value"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> RunConfig.load(dir.resolve("absent.conf"), List.of()))
                .getMessage().contains("absent.conf"));
    }

    @Test
    void overridesWinOverTheFileWhichWinsOverDefaults() throws Exception {
        Path file = dir.resolve("run.conf");
        Files.writeString(file, "train { steps = 7, lr = 0.01 }\n");
        RunConfig c = RunConfig.load(file, List.of("train.steps=9"));
        assertEquals(9, c.integer("train.steps"));
        assertEquals(0.01, c.number("train.lr"));
        assertEquals(8, c.integer("adapter.rank"));
    }
}
