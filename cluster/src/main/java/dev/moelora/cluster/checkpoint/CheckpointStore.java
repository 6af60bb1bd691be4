package dev.moelora.cluster.checkpoint;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.moelora.model.files.DurableFiles;
import dev.moelora.model.checkpoint.FileDigest;
import dev.moelora.proto.checkpoint.CheckpointManifest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A run's checkpoint directory: {@code step-NNNNNN/} per checkpoint (the state files, then
 * {@code manifest.pb}, written last), and {@code latest}, a one-line text file naming the newest
 * committed step directory, moved last. Every file goes in under a temporary name, is forced to
 * disk and renamed, so a crash at any moment leaves either the previous checkpoint as latest or
 * the new one complete. Nothing is overwritten or deleted until a newer checkpoint is complete.
 *
 * <p>Writing a checkpoint of step s: {@link #reuse}(s) (a checkpoint of s that verifies is kept,
 * not rewritten: the run is deterministic, so it holds what this run would write), otherwise
 * {@link #begin}(s), the state files into the directory it returns (by whichever processes hold
 * them), then {@link #commit} with the manifest listing them. Loading: {@link #newestValid} or
 * {@link #open}, both of which verify every file's size and SHA-256 before anyone reads a tensor.
 *
 * <p>The {@code log} hears of every checkpoint found unusable (which one, which file, what is
 * wrong); it is never told anything else. This class writes no state files itself and knows no
 * tensors.
 */
public final class CheckpointStore {
    public static final int FORMAT_VERSION = 1;
    public static final String MANIFEST = "manifest.pb";
    public static final String LATEST = "latest";
    private static final Pattern STEP_DIR = Pattern.compile("step-(\\d{6,})");

    /** A checkpoint whose manifest parsed and whose every file matched its size and SHA-256 when it was opened. */
    public record Loaded(Path dir, CheckpointManifest manifest) {
        public long step() {
            return manifest.getStep();
        }

        /** The manifest's files, as the state-file readers take them. */
        public List<FileDigest> files() {
            return manifest.getFilesList().stream().map(f -> new FileDigest(f.getName(), f.getSize(), f.getSha256())).toList();
        }
    }

    private final Path dir;
    private final int keepLast;
    private final Consumer<String> log;
    /** Steps whose checkpoint {@link #newestValid} found unusable: pruned first, never counted as kept. */
    private final java.util.Set<Long> unusable = new java.util.HashSet<>();

    /**
     * @param keepLast complete checkpoints kept when one is committed (at least 1)
     * @param log      told about every checkpoint found unusable
     */
    public CheckpointStore(Path dir, int keepLast, Consumer<String> log) {
        if (keepLast < 1) throw new IllegalArgumentException("checkpoint.keep-last must be >= 1, got " + keepLast);
        this.dir = dir;
        this.keepLast = keepLast;
        this.log = log;
    }

    public Path dir() {
        return dir;
    }

    /** {@code <dir>/step-NNNNNN} (at least six digits). */
    public Path stepDir(long step) {
        if (step < 0) throw new IllegalArgumentException("a checkpoint step is >= 0, got " + step);
        return dir.resolve(String.format(Locale.ROOT, "step-%06d", step));
    }

    /** Whether step's directory has its manifest, i.e. its writer finished it (whether its files are still intact is {@link #open}'s to say). */
    public boolean complete(long step) {
        return Files.isRegularFile(stepDir(step).resolve(MANIFEST));
    }

    /** The step {@code latest} names, when it names one. */
    public OptionalLong latestStep() throws IOException {
        Path latest = dir.resolve(LATEST);
        if (!Files.isRegularFile(latest)) return OptionalLong.empty();
        Matcher m = STEP_DIR.matcher(Files.readString(latest, StandardCharsets.UTF_8).trim());
        return m.matches() ? OptionalLong.of(Long.parseLong(m.group(1))) : OptionalLong.empty();
    }

    /** Every step that has a directory here (complete or not), oldest first. */
    public List<Long> steps() throws IOException {
        if (!Files.isDirectory(dir)) return List.of();
        List<Long> out = new ArrayList<>();
        try (Stream<Path> entries = Files.list(dir)) {
            for (Path p : (Iterable<Path>) entries::iterator) {
                Matcher m = STEP_DIR.matcher(p.getFileName().toString());
                if (m.matches() && Files.isDirectory(p)) out.add(Long.parseLong(m.group(1)));
            }
        }
        out.sort(Comparator.naturalOrder());
        return out;
    }

    /**
     * When step already has a checkpoint that verifies, makes it latest (pruning as {@link #commit}
     * does) and returns it: it is not rewritten, because the run is deterministic and would write
     * the same bytes. Empty otherwise (nothing changed).
     */
    public Optional<Loaded> reuse(long step) throws IOException {
        if (!complete(step)) return Optional.empty();
        Loaded existing;
        try {
            existing = open(stepDir(step));
        } catch (IOException e) {
            log.accept("checkpoint " + stepDir(step) + " is not reused: " + e.getMessage());
            return Optional.empty();
        }
        moveLatest(step);
        return Optional.of(existing);
    }

    /**
     * A fresh, empty directory for step's state files. A leftover directory of step (incomplete,
     * or complete but no longer verifying) is logged and removed first; a checkpoint of step that
     * verifies is never replaced ({@link #reuse} it).
     */
    public Path begin(long step) throws IOException {
        Path d = stepDir(step);
        if (Files.exists(d)) {
            try {
                open(d);
                throw new IllegalStateException(d + " holds a complete checkpoint; it is reused, never rewritten");
            } catch (IOException damaged) {
                log.accept("checkpoint " + d + " is replaced: " + damaged.getMessage());
            }
            deleteTree(d);
            unusable.remove(step);
        }
        Files.createDirectories(d);
        DurableFiles.syncDirectory(dir);
        return d;
    }

    /**
     * Completes the checkpoint of {@code manifest.getStep()}: every file it lists must be in the
     * step directory with its size; then the manifest is written (temporary name, fsync, rename),
     * then {@code latest} moves to it, then older checkpoints beyond keep-last and older incomplete
     * step directories are removed (never this one, never anything newer than it).
     */
    public Loaded commit(CheckpointManifest manifest) throws IOException {
        long step = manifest.getStep();
        Path d = stepDir(step);
        if (complete(step)) throw new IllegalStateException(d + " is already complete; a checkpoint is never rewritten");
        if (manifest.getFormatVersion() != FORMAT_VERSION) {
            throw new IllegalArgumentException("manifest format version " + manifest.getFormatVersion() + ", this build writes " + FORMAT_VERSION);
        }
        if (manifest.getFilesCount() == 0) throw new IllegalArgumentException(d + ": a checkpoint manifest lists at least one file");
        for (CheckpointManifest.CheckpointFile f : manifest.getFilesList()) {
            Path file = d.resolve(plainName(d, f.getName()));
            long size;
            try {
                size = Files.size(file);
            } catch (NoSuchFileException e) {
                throw new IOException(file + ": listed in the manifest of step " + step + " but not written", e);
            }
            if (size != f.getSize()) throw new IOException(file + ": " + size + " bytes, the manifest says " + f.getSize());
        }
        DurableFiles.write(d.resolve(MANIFEST), manifest.toByteArray());
        moveLatest(step);
        return new Loaded(d, manifest);
    }

    /**
     * The newest checkpoint that verifies: the one {@code latest} names first, then every other
     * step directory, newest first. Each one that does not verify is logged (the checkpoint, the
     * file, what is wrong) and the previous one tried. Empty when none verifies.
     */
    public Optional<Loaded> newestValid() throws IOException {
        List<Long> candidates = new ArrayList<>(steps());
        candidates.sort(Comparator.reverseOrder());
        Path latestFile = dir.resolve(LATEST);
        OptionalLong latest = latestStep();
        if (latest.isPresent()) {
            candidates.remove(Long.valueOf(latest.getAsLong()));
            candidates.add(0, latest.getAsLong());
        } else if (Files.exists(latestFile)) {
            log.accept(latestFile + " names no step directory ('" + Files.readString(latestFile, StandardCharsets.UTF_8).trim()
                    + "'); trying every step directory, newest first");
        }
        for (long step : candidates) {
            try {
                return Optional.of(open(stepDir(step)));
            } catch (IOException e) {
                unusable.add(step);
                log.accept("checkpoint " + stepDir(step) + " is not usable: " + e.getMessage() + "; trying the previous one");
            }
        }
        return Optional.empty();
    }

    /**
     * Opens the checkpoint in {@code stepDir}: its manifest must parse, have this build's format
     * version and the step its directory names, and every file it lists must match its size and
     * SHA-256. The exception names the checkpoint, the file and what is wrong.
     */
    public static Loaded open(Path stepDir) throws IOException {
        Path manifestFile = stepDir.resolve(MANIFEST);
        if (!Files.isDirectory(stepDir)) throw new IOException(stepDir + ": not a checkpoint directory (it does not exist)");
        if (!Files.isRegularFile(manifestFile)) {
            throw new IOException(manifestFile + ": missing (an incomplete checkpoint: its writer stopped before the end)");
        }
        CheckpointManifest manifest;
        try {
            manifest = CheckpointManifest.parseFrom(Files.readAllBytes(manifestFile));
        } catch (InvalidProtocolBufferException e) {
            throw new IOException(manifestFile + ": not a checkpoint manifest (" + e.getMessage() + ")", e);
        }
        if (manifest.getFormatVersion() != FORMAT_VERSION) {
            throw new IOException(manifestFile + ": format version " + manifest.getFormatVersion() + ", this build reads " + FORMAT_VERSION);
        }
        Matcher m = STEP_DIR.matcher(stepDir.getFileName().toString());
        if (m.matches() && Long.parseLong(m.group(1)) != manifest.getStep()) {
            throw new IOException(manifestFile + ": says step " + manifest.getStep() + " in directory " + stepDir.getFileName());
        }
        if (manifest.getFilesCount() == 0) throw new IOException(manifestFile + ": lists no state files");
        for (CheckpointManifest.CheckpointFile f : manifest.getFilesList()) {
            new FileDigest(f.getName(), f.getSize(), f.getSha256()).verify(stepDir.resolve(plainName(manifestFile, f.getName())));
        }
        return new Loaded(stepDir, manifest);
    }

    /** A listed file's name must stay inside its step directory. */
    private static String plainName(Path where, String name) throws IOException {
        if (name.isEmpty() || name.contains("/") || name.contains("\\") || name.equals(".") || name.equals("..")) {
            throw new IOException(where + ": file name '" + name + "' is not a plain file name");
        }
        return name;
    }

    private void moveLatest(long step) throws IOException {
        DurableFiles.write(dir.resolve(LATEST), (stepDir(step).getFileName() + "\n").getBytes(StandardCharsets.UTF_8));
        prune(step);
    }

    /**
     * Keeps the newest keep-last complete checkpoints up to {@code latest}; removes older ones,
     * older incomplete directories and older ones found unusable.
     */
    private void prune(long latest) throws IOException {
        List<Long> steps = new ArrayList<>(steps());
        steps.sort(Comparator.reverseOrder());
        int kept = 0;
        for (long s : steps) {
            if (s > latest) continue;
            if (s == latest) {
                kept++;
                continue;
            }
            if (complete(s) && !unusable.contains(s) && kept < keepLast) {
                kept++;
                continue;
            }
            deleteTree(stepDir(s));
            unusable.remove(s);
        }
        DurableFiles.syncDirectory(dir);
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) Files.delete(p);
        }
    }
}
