package dev.moelora.cluster.dashboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.cluster.observe.RecordStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tailing reader: incremental lines, partial lines, rewritten files, malformed lines, run discovery. */
class DashboardTailTest {
    @TempDir
    Path dir;

    @Test
    void readsOnlyCompleteLinesAndTakesAPartialLineWhenItsNewlineArrives() throws Exception {
        Path file = dir.resolve("metrics.jsonl");
        Files.writeString(file, "{\"step\":1}\n{\"step\":2}\n{\"st");
        JsonlTail tail = new JsonlTail(file);
        JsonlTail.Poll first = tail.poll();
        assertFalse(first.rewound());
        assertEquals(List.of(1, 2), steps(first));
        assertEquals(List.of(), steps(tail.poll()), "nothing new until the partial line ends");
        DashboardFixture.write(file, "ep\":3}\n");
        JsonlTail.Poll third = tail.poll();
        assertEquals(List.of(3), steps(third));
        assertEquals(3, third.lines().get(0).number(), "line numbers count from the file's start");
    }

    @Test
    void aMalformedLineIsCountedAndSkippedAndTheLinesAfterItAreRead() throws Exception {
        Path run = DashboardFixture.run(dir.resolve("run"), 3);
        DashboardFixture.write(run.resolve("metrics.jsonl"), "{\"step\": 4, \"loss\": \n[1, 2]\n{\"loss\": 1.0}\n");
        DashboardFixture.append(run, 4, 5);
        Workspace w = new Workspace(run, change -> {});
        w.poll();
        RunRecords r = w.run("run");
        synchronized (r) {
            assertEquals(List.of(1, 2, 3, 4, 5), new ArrayList<>(r.steps().keySet()), "every good line before and after the bad ones");
            assertEquals(3, r.malformed().get("metrics.jsonl"), "broken JSON, an array, a metrics line without step");
        }
    }

    @Test
    void aTruncatedFileIsReadAgainFromItsStartAndTheRewindIsReported() throws Exception {
        Path run = DashboardFixture.run(dir.resolve("run"), 8);
        List<Workspace.Change> changes = new ArrayList<>();
        Workspace w = new Workspace(run, changes::add);
        w.poll();
        RunRecords r = w.run("run");
        assertEquals(8, r.count(RecordStream.METRICS));
        // a recovered run rewinds its files to its checkpoint (step 5) and trains on
        List<String> kept = Files.readAllLines(run.resolve("metrics.jsonl")).subList(0, 5);
        Files.write(run.resolve("metrics.jsonl"), kept);
        changes.clear();
        w.poll();
        assertTrue(changes.stream().anyMatch(c -> c instanceof Workspace.Rewound rw && rw.stream() == RecordStream.METRICS), "a reset is reported: " + changes);
        synchronized (r) {
            assertEquals(List.of(1, 2, 3, 4, 5), new ArrayList<>(r.steps().keySet()));
        }
        assertEquals(5, r.count(RecordStream.METRICS));
        List<Integer> indices = changes.stream().filter(c -> c instanceof Workspace.Appended a && a.stream() == RecordStream.METRICS)
                .map(c -> ((Workspace.Appended) c).index()).toList();
        assertEquals(List.of(0, 1, 2, 3, 4), indices, "records after a reset count from 0 again");
    }

    @Test
    void aFileReplacedByOneOfTheSameLengthIsNoticed() throws Exception {
        Path file = dir.resolve("metrics.jsonl");
        Files.writeString(file, "{\"step\":1}\n{\"step\":2}\n");
        JsonlTail tail = new JsonlTail(file);
        assertEquals(List.of(1, 2), steps(tail.poll()));
        Path other = dir.resolve("metrics.new");
        Files.writeString(other, "{\"step\":7}\n{\"step\":8}\n");
        Files.move(other, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        JsonlTail.Poll again = tail.poll();
        assertTrue(again.rewound());
        assertEquals(List.of(7, 8), steps(again));
    }

    @Test
    void layerAndKindComeFromTheModuleNameWhenALineHasNone() throws Exception {
        assertEquals(3, RunRecords.layerOf("encoder.layer.3.attention.self.query"));
        assertEquals("attention.self.query", RunRecords.kindOf("encoder.layer.3.attention.self.query"));
        assertEquals(11, RunRecords.layerOf("model.layers.11.self_attn.q_proj"));
        assertEquals("self_attn.q_proj", RunRecords.kindOf("model.layers.11.self_attn.q_proj"));
        assertEquals(-1, RunRecords.layerOf("classifier.dense"));
        assertEquals("classifier.dense", RunRecords.kindOf("classifier.dense"));
        Path run = DashboardFixture.run(dir.resolve("run"), 2);
        Workspace w = new Workspace(run, change -> {});
        w.poll();
        RunRecords r = w.run("run");
        synchronized (r) {
            RunRecords.Routing old = r.routing().get(2).get(DashboardFixture.DEAD_MODULE);
            assertEquals(1, old.layer());
            assertEquals("attention.self.query", old.kind());
        }
    }

    @Test
    void anExperimentDirectoryFindsItsRunsAsTheyAppear() throws Exception {
        Path experiment = dir.resolve("exp");
        Files.createDirectories(experiment);
        DashboardFixture.run(experiment.resolve("lora"), 2);
        List<Workspace.Change> changes = new ArrayList<>();
        Workspace w = new Workspace(experiment, changes::add);
        w.poll();
        assertTrue(w.experiment());
        assertEquals(List.of("lora"), w.runs().stream().map(RunRecords::name).toList());
        DashboardFixture.run(experiment.resolve("moelora"), 1);
        Files.writeString(experiment.resolve("comparison.json"), "[{\"run\":\"lora\",\"adapter\":\"lora\",\"accuracy\":{\"a\":0.5},\"average\":0.5}]");
        w.poll();
        assertEquals(List.of("lora", "moelora"), w.runs().stream().map(RunRecords::name).toList());
        assertTrue(changes.contains(new Workspace.RunFound("moelora")));
        assertTrue(changes.contains(new Workspace.FileChanged("", Workspace.COMPARISON)));
        assertEquals("lora", w.comparison().get(0).get("run").asText());
    }

    private static List<Integer> steps(JsonlTail.Poll poll) {
        return poll.lines().stream().map(l -> l.record().get("step").asInt()).toList();
    }
}
