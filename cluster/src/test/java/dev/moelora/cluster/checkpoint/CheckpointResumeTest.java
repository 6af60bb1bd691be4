package dev.moelora.cluster.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.cluster.job.Preemption;
import dev.moelora.model.checkpoint.StateFile;
import dev.moelora.proto.checkpoint.CheckpointManifest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A single-process run killed after its last checkpoint and resumed with run.resume-from = latest
 * equals the uninterrupted run bit for bit: the same metrics lines (but their wall-clock fields),
 * the same routing lines, byte-identical adapter files; also when the latest checkpoint is
 * damaged, in every way, and the one before it is used.
 */
class CheckpointResumeTest {
    /** One directory for the whole class: the uninterrupted runs and the killed state are made once and compared to many times. */
    @TempDir
    static Path dir;
    private static final Map<String, TinyRuns.Run> straight = new HashMap<>();

    private static TinyRuns.Run straight(String family) throws IOException {
        TinyRuns.Run r = straight.get(family);
        if (r == null) {
            r = TinyRuns.run(family, TinyRuns.settings(family, dir.resolve(family), "straight"), Preemption::never);
            straight.put(family, r);
        }
        return r;
    }

    private static List<String> resumeLatest(List<String> settings) {
        List<String> s = new ArrayList<>(settings);
        s.add("run.resume-from=latest");
        return s;
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "moelora", "llama-lora"})
    void aRunKilledAfterItsLastCheckpointAndResumedEqualsTheUninterruptedRun(String family) throws IOException {
        TinyRuns.Run straight = straight(family);
        List<String> settings = TinyRuns.settings(family, dir.resolve(family), "killed");
        TinyRuns.Run killed = TinyRuns.killedAfter(family, settings, 5);
        assertEquals(5, TinyRuns.lines(killed.runDir().resolve("metrics.jsonl")).size(), "step 5 was recorded before the kill");
        Path checkpoints = killed.runDir().resolve("checkpoints");
        assertEquals("step-000004", Files.readString(checkpoints.resolve("latest")).trim());
        if (family.equals("moelora")) {
            CheckpointManifest m = CheckpointStore.open(checkpoints.resolve("step-000004")).manifest();
            assertEquals(List.of(StateFile.TRUNK, "expert-0.safetensors", "expert-1.safetensors", "expert-2.safetensors", "expert-3.safetensors"),
                    m.getFilesList().stream().map(CheckpointManifest.CheckpointFile::getName).toList(), "one state file per expert");
        }

        TinyRuns.Run resumed = TinyRuns.run(family, resumeLatest(settings), Preemption::never);
        assertTrue(resumed.log().contains("resumed    : " + checkpoints.resolve("step-000004") + " at step 4"), resumed.log());
        assertEquals(TinyRuns.metrics(straight.runDir()), TinyRuns.metrics(resumed.runDir()), "metrics.jsonl, step 5 once");
        assertEquals(TinyRuns.lines(straight.runDir().resolve("routing.jsonl")), TinyRuns.lines(resumed.runDir().resolve("routing.jsonl")));
        TinyRuns.assertSameAdapter(straight.runDir(), resumed.runDir());
        assertEquals(List.of(4L, 6L, 8L), new CheckpointStore(checkpoints, 3, m -> {}).steps(), "6 and 8 written on resume, keep-last 3");
    }

    /** Ways the latest checkpoint can be damaged; each returns the file the log must name. */
    enum Damage {
        MISSING_FILE, TRUNCATED_FILE, FLIPPED_BYTE, GARBAGE_MANIFEST, MANIFEST_WITH_A_WRONG_HASH;

        Path apply(Path step) throws IOException {
            Path trunk = step.resolve(StateFile.TRUNK), manifest = step.resolve(CheckpointStore.MANIFEST);
            switch (this) {
                case MISSING_FILE -> Files.delete(trunk);
                case TRUNCATED_FILE -> {
                    try (FileChannel ch = FileChannel.open(trunk, StandardOpenOption.WRITE)) {
                        ch.truncate(ch.size() / 2);
                    }
                }
                case FLIPPED_BYTE -> {
                    try (FileChannel ch = FileChannel.open(trunk, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                        ByteBuffer b = ByteBuffer.allocate(1);
                        long at = ch.size() - 5;
                        ch.read(b, at);
                        b.put(0, (byte) (b.get(0) ^ 1)).rewind();
                        ch.write(b, at);
                    }
                }
                case GARBAGE_MANIFEST -> Files.write(manifest, "not a manifest at all".getBytes(StandardCharsets.UTF_8));
                case MANIFEST_WITH_A_WRONG_HASH -> {
                    CheckpointManifest m = CheckpointManifest.parseFrom(Files.readAllBytes(manifest));
                    CheckpointManifest.Builder b = m.toBuilder();
                    String sha = m.getFiles(0).getSha256();
                    b.setFiles(0, m.getFiles(0).toBuilder().setSha256((sha.charAt(0) == '0' ? "1" : "0") + sha.substring(1)));
                    Files.write(manifest, b.build().toByteArray());
                }
            }
            return this == GARBAGE_MANIFEST ? manifest : trunk;
        }
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(Damage.class)
    void aDamagedLatestCheckpointIsSkippedNamingTheFileAndThePreviousOneGivesTheSameAdapter(Damage damage) throws IOException {
        String family = "llama-lora";
        TinyRuns.Run straight = straight(family);
        Path killedState = dir.resolve("killed-state");
        if (!Files.exists(killedState)) TinyRuns.killedAfter(family, TinyRuns.settings(family, killedState, "run"), 5);
        Path root = dir.resolve("damaged-" + damage);
        TinyRuns.copyTree(killedState, root);
        Path checkpoints = root.resolve("run/checkpoints");
        Path bad = damage.apply(checkpoints.resolve("step-000004"));

        TinyRuns.Run resumed = TinyRuns.run(family, resumeLatest(TinyRuns.settings(family, root, "run")), Preemption::never);
        String log = resumed.log();
        assertTrue(log.contains("checkpoint " + checkpoints.resolve("step-000004") + " is not usable: " + bad), log);
        assertTrue(log.contains("resumed    : " + checkpoints.resolve("step-000002") + " at step 2"), log);
        assertTrue(log.contains("checkpoint " + checkpoints.resolve("step-000004") + " is replaced"), "the damaged one is rewritten: " + log);
        assertEquals(TinyRuns.metrics(straight.runDir()), TinyRuns.metrics(resumed.runDir()));
        TinyRuns.assertSameAdapter(straight.runDir(), resumed.runDir());
        assertTrue(TinyRuns.lines(resumed.runDir().resolve("events.jsonl")).stream().anyMatch(l -> l.contains("\"checkpoint-invalid\"")));
    }
}
