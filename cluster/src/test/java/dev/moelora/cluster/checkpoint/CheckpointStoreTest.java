package dev.moelora.cluster.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.checkpoint.FileDigest;
import dev.moelora.proto.checkpoint.CheckpointManifest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The checkpoint directory on its own (files of arbitrary bytes stand for the state files):
 * commit order and the latest pointer, verification and fall-back for every kind of damage,
 * incomplete directories, keep-last pruning, and reuse instead of rewriting.
 */
class CheckpointStoreTest {
    @TempDir
    Path dir;
    final List<String> log = new ArrayList<>();

    CheckpointStore store(int keepLast) {
        return new CheckpointStore(dir.resolve("checkpoints"), keepLast, log::add);
    }

    /** Writes two state files whose bytes depend on the step, then commits their manifest. */
    static CheckpointStore.Loaded save(CheckpointStore store, long step) throws IOException {
        Path d = store.begin(step);
        List<FileDigest> files = new ArrayList<>();
        for (String name : List.of("trunk.safetensors", "expert-0.safetensors")) {
            byte[] bytes = new byte[64 + (int) step];
            for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (i * 31 + step + name.length());
            Files.write(d.resolve(name), bytes);
            files.add(FileDigest.of(d.resolve(name)));
        }
        CheckpointManifest.Builder m = CheckpointManifest.newBuilder().setFormatVersion(CheckpointStore.FORMAT_VERSION).setRunName("t")
                .setStep(step).setOptimizerSteps(step);
        for (FileDigest f : files) m.addFiles(CheckpointManifest.CheckpointFile.newBuilder().setName(f.name()).setSize(f.size()).setSha256(f.sha256()));
        return store.commit(m.build());
    }

    @Test
    void commitWritesTheManifestAndMovesLatestToIt() throws IOException {
        CheckpointStore store = store(3);
        save(store, 2);
        CheckpointStore.Loaded four = save(store, 4);
        assertEquals(store.stepDir(4), four.dir());
        assertEquals("step-000004", Files.readString(store.dir().resolve("latest")).trim());
        assertEquals(4, store.newestValid().orElseThrow().step());
        assertEquals(List.of("expert-0.safetensors", "manifest.pb", "trunk.safetensors"), listing(store.stepDir(4)), "no temporary file left");
        assertEquals(List.of("latest", "step-000002", "step-000004"), listing(store.dir()));
        assertTrue(log.isEmpty(), log.toString());
        assertEquals("step-1234567", store.stepDir(1_234_567).getFileName().toString(), "six digits at least, more when needed");
    }

    static List<String> listing(Path d) throws IOException {
        try (var s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** Every way the latest checkpoint can be damaged, and the file the log must then name. */
    enum Damage {
        MISSING_FILE, TRUNCATED_FILE, FLIPPED_BYTE, GARBAGE_MANIFEST, MANIFEST_WITH_A_WRONG_HASH, MANIFEST_OF_ANOTHER_FORMAT;

        Path apply(Path step) throws IOException {
            Path file = step.resolve("expert-0.safetensors"), manifest = step.resolve(CheckpointStore.MANIFEST);
            switch (this) {
                case MISSING_FILE -> Files.delete(file);
                case TRUNCATED_FILE -> {
                    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                        ch.truncate(ch.size() - 1);
                    }
                }
                case FLIPPED_BYTE -> {
                    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                        ByteBuffer b = ByteBuffer.allocate(1);
                        ch.read(b, 10);
                        b.put(0, (byte) (b.get(0) ^ 0x80)).rewind();
                        ch.write(b, 10);
                    }
                }
                case GARBAGE_MANIFEST -> Files.write(manifest, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f, 0x42, 0x13});
                case MANIFEST_WITH_A_WRONG_HASH -> {
                    CheckpointManifest m = CheckpointManifest.parseFrom(Files.readAllBytes(manifest));
                    String sha = m.getFiles(1).getSha256();
                    Files.write(manifest, m.toBuilder().setFiles(1, m.getFiles(1).toBuilder()
                            .setSha256(sha.substring(0, 63) + (sha.endsWith("0") ? "1" : "0"))).build().toByteArray());
                }
                case MANIFEST_OF_ANOTHER_FORMAT -> {
                    CheckpointManifest m = CheckpointManifest.parseFrom(Files.readAllBytes(manifest));
                    Files.write(manifest, m.toBuilder().setFormatVersion(99).build().toByteArray());
                }
            }
            return this == GARBAGE_MANIFEST || this == MANIFEST_OF_ANOTHER_FORMAT ? manifest : file;
        }
    }

    @ParameterizedTest
    @EnumSource(Damage.class)
    void aDamagedLatestCheckpointFallsBackToThePreviousOneNamingTheBadFile(Damage damage) throws IOException {
        CheckpointStore store = store(3);
        save(store, 2);
        save(store, 4);
        Path bad = damage.apply(store.stepDir(4));

        Optional<CheckpointStore.Loaded> found = store.newestValid();
        assertEquals(2, found.orElseThrow().step());
        assertEquals(1, log.size(), log.toString());
        assertTrue(log.get(0).startsWith("checkpoint " + store.stepDir(4) + " is not usable: " + bad + ": "), log.get(0));
        IOException explicit = assertThrows(IOException.class, () -> CheckpointStore.open(store.stepDir(4)));
        assertTrue(explicit.getMessage().startsWith(bad.toString()), explicit.getMessage());
        if (damage == Damage.MANIFEST_WITH_A_WRONG_HASH || damage == Damage.FLIPPED_BYTE) {
            assertTrue(explicit.getMessage().contains("SHA-256"), explicit.getMessage());
        }
        if (damage == Damage.TRUNCATED_FILE) assertTrue(explicit.getMessage().contains("bytes, expected"), explicit.getMessage());

        save(store, 6); // the run goes on from step 2 (were it to reach 4 again, begin(4) would replace the damaged one)
        assertEquals(List.of(2L, 6L), store.steps(), "the unusable checkpoint is pruned, not kept as one of keep-last 3");
    }

    @Test
    void withNoValidCheckpointNewestValidIsEmptyAndOpeningOneNamesWhatIsWrong() throws IOException {
        CheckpointStore store = store(3);
        assertEquals(Optional.empty(), store.newestValid(), "an empty (absent) directory");
        save(store, 2);
        Damage.MISSING_FILE.apply(store.stepDir(2));
        assertEquals(Optional.empty(), store.newestValid());
        assertEquals(1, log.size());
        IOException e = assertThrows(IOException.class, () -> CheckpointStore.open(store.stepDir(2)));
        assertTrue(e.getMessage().contains(store.stepDir(2).resolve("expert-0.safetensors") + ": missing"), e.getMessage());
        IOException none = assertThrows(IOException.class, () -> CheckpointStore.open(store.stepDir(7)));
        assertTrue(none.getMessage().contains("step-000007") && none.getMessage().contains("does not exist"), none.getMessage());
    }

    @Test
    void anIncompleteStepDirectoryIsNeverChosenEvenWhenLatestNamesIt() throws IOException {
        CheckpointStore store = store(3);
        save(store, 2);
        Path six = store.begin(6);
        Files.write(six.resolve("trunk.safetensors"), new byte[] {1, 2, 3});
        assertFalse(store.complete(6));
        assertEquals(2, store.newestValid().orElseThrow().step(), "latest first");

        Files.writeString(store.dir().resolve("latest"), "step-000006\n"); // a pointer that ran ahead of its checkpoint
        assertEquals(2, store.newestValid().orElseThrow().step());
        assertEquals(List.of("checkpoint " + six + " is not usable: " + six.resolve("manifest.pb")
                + ": missing (an incomplete checkpoint: its writer stopped before the end); trying the previous one"), log);
        Files.delete(store.dir().resolve("latest"));
        log.clear();
        assertEquals(2, store.newestValid().orElseThrow().step(), "without latest: newest first, the incomplete one skipped");
        assertEquals(1, log.size(), log.toString());
    }

    @Test
    void commitKeepsTheNewestKeepLastAndRemovesOlderAndIncompleteOnesButNothingNewer() throws IOException {
        CheckpointStore store = store(2);
        save(store, 2);
        save(store, 4);
        store.begin(5); // a writer that died before its manifest
        save(store, 6);
        assertEquals(List.of(4L, 6L), store.steps(), "2 pruned (keep-last 2), incomplete 5 removed");
        Path ahead = store.begin(10); // newer than latest: not this commit's to touch
        save(store, 8);
        assertEquals(List.of(6L, 8L, 10L), store.steps());
        assertTrue(Files.isDirectory(ahead));
        assertEquals(8, store.latestStep().orElseThrow());
    }

    @Test
    void aCompleteCheckpointIsReusedNotRewrittenAndADamagedOneIsReplaced() throws IOException {
        CheckpointStore store = store(3);
        save(store, 2);
        CheckpointStore.Loaded four = save(store, 4);
        Files.writeString(store.dir().resolve("latest"), "step-000002\n"); // as after resuming from 2
        assertEquals(2, store.newestValid().orElseThrow().step(), "latest first, even with a newer complete one");
        assertEquals(four.manifest(), store.reuse(4).orElseThrow().manifest());
        assertEquals(4, store.latestStep().orElseThrow(), "latest moved to the reused checkpoint");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> store.begin(4));
        assertTrue(e.getMessage().contains("never rewritten"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> store.commit(four.manifest()));

        Damage.FLIPPED_BYTE.apply(store.stepDir(4));
        assertEquals(Optional.empty(), store.reuse(4));
        Path fresh = store.begin(4);
        assertEquals(List.of(), listing(fresh), "the damaged directory is replaced by an empty one");
        assertTrue(log.get(0).startsWith("checkpoint " + store.stepDir(4) + " is not reused: ") && log.get(0).contains("SHA-256"),
                "reuse says why: " + log);
        assertTrue(log.get(1).startsWith("checkpoint " + store.stepDir(4) + " is replaced: "), log.toString());
        save(store, 4);
        assertEquals(4, store.newestValid().orElseThrow().step());
    }

    @Test
    void commitRefusesAManifestListingAFileThatIsNotThereOrHasAnotherSize() throws IOException {
        CheckpointStore store = store(3);
        Path d = store.begin(3);
        Files.write(d.resolve("trunk.safetensors"), new byte[10]);
        CheckpointManifest.Builder m = CheckpointManifest.newBuilder().setFormatVersion(CheckpointStore.FORMAT_VERSION).setStep(3)
                .addFiles(CheckpointManifest.CheckpointFile.newBuilder().setName("trunk.safetensors").setSize(11).setSha256("00"));
        IOException size = assertThrows(IOException.class, () -> store.commit(m.build()));
        assertTrue(size.getMessage().contains("10 bytes, the manifest says 11"), size.getMessage());
        m.addFiles(CheckpointManifest.CheckpointFile.newBuilder().setName("expert-9.safetensors").setSize(1).setSha256("00"));
        m.setFiles(0, m.getFiles(0).toBuilder().setSize(10));
        IOException missing = assertThrows(IOException.class, () -> store.commit(m.build()));
        assertTrue(missing.getMessage().contains("expert-9.safetensors: listed in the manifest of step 3 but not written"), missing.getMessage());
        assertFalse(store.complete(3));
        assertFalse(Files.exists(store.dir().resolve("latest")), "latest moves only after a commit");
    }
}
