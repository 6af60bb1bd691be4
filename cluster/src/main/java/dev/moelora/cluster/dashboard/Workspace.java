package dev.moelora.cluster.dashboard;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.moelora.cluster.observe.RecordStream;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The runs under a root directory as the dashboard sees them: the root is one run directory when
 * it holds a run's files, otherwise an experiment directory whose sub-directories are its runs
 * (found as they appear) next to its comparison.json. Each {@link #poll()} reads what the files
 * gained since the last one, and tells its listener every record added, every file rewound and
 * every whole-file state that changed. Only one thread polls; readers get the run list without
 * waiting for a poll. It never writes into the root.
 */
final class Workspace {
    private static final Logger LOG = LoggerFactory.getLogger(Workspace.class);
    static final String PLACEMENT = "placement.json", EVAL = "eval.json", CONFIG = "config.conf", COMPARISON = "comparison.json";

    /** What a poll found, in the order it happened. */
    sealed interface Change {}
    /** A record was added to a stream of a run; index counts from 0 since the file was last read from its start. */
    record Appended(String run, RecordStream stream, int index, int generation, String line) implements Change {}
    /** A stream's file was truncated or replaced: its records start again (from index 0). */
    record Rewound(String run, RecordStream stream, int generation) implements Change {}
    /** A whole-file state changed: placement.json, eval.json or config.conf of a run, or the experiment's comparison.json (run ""). */
    record FileChanged(String run, String file) implements Change {}
    /** A run directory appeared. */
    record RunFound(String run) implements Change {}

    private final Path root;
    private final Consumer<Change> listener;
    private final Map<String, Tracked> tracked = new HashMap<>();
    private final Stamp comparisonStamp = new Stamp();
    private volatile List<RunRecords> runs = List.of();
    private volatile boolean singleRun;
    private volatile JsonNode comparison;

    Workspace(Path root, Consumer<Change> listener) {
        this.root = root.toAbsolutePath().normalize();
        this.listener = listener;
    }

    Path root() {
        return root;
    }

    /** The runs found so far, in name order (one for a run directory). */
    List<RunRecords> runs() {
        return runs;
    }

    RunRecords run(String name) {
        for (RunRecords r : runs) if (r.name().equals(name)) return r;
        return null;
    }

    /** The root is an experiment directory (runs in sub-directories), not one run. */
    boolean experiment() {
        return !singleRun;
    }

    /** The experiment's comparison.json, null until it is written. */
    JsonNode comparison() {
        return comparison;
    }

    /** Whether a directory holds a run's files. */
    static boolean isRunDirectory(Path dir) {
        for (RecordStream s : RecordStream.values()) if (Files.exists(dir.resolve(s.file()))) return true;
        return Files.exists(dir.resolve(PLACEMENT)) || Files.exists(dir.resolve(EVAL)) || Files.exists(dir.resolve(CONFIG));
    }

    /** Reads what every file gained since the last poll. An unreadable file is logged and tried again next time. */
    synchronized void poll() {
        discover();
        for (RunRecords run : runs) {
            Tracked t = tracked.get(run.name());
            for (RecordStream s : RecordStream.values()) tail(run, t, s);
            wholeFile(run, t, PLACEMENT);
            wholeFile(run, t, EVAL);
            wholeFile(run, t, CONFIG);
        }
        if (!singleRun) readComparison();
    }

    private void discover() {
        if (runs.isEmpty() && !singleRun && isRunDirectory(root)) {
            singleRun = true;
            add(new RunRecords(name(root), root));
            return;
        }
        if (singleRun || !Files.isDirectory(root)) return;
        TreeSet<Path> found = new TreeSet<>();
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(root, Files::isDirectory)) {
            for (Path d : dirs) if (!tracked.containsKey(name(d)) && isRunDirectory(d)) found.add(d);
        } catch (IOException e) {
            LOG.warn("{}: cannot list the experiment's runs: {}", root, e.toString());
        }
        for (Path d : found) add(new RunRecords(name(d), d));
    }

    private static String name(Path dir) {
        Path n = dir.getFileName();
        return n == null ? dir.toString() : n.toString();
    }

    private void add(RunRecords run) {
        tracked.put(run.name(), new Tracked(run.dir()));
        List<RunRecords> next = new ArrayList<>(runs);
        next.add(run);
        next.sort((a, b) -> a.name().compareTo(b.name()));
        runs = List.copyOf(next);
        listener.accept(new RunFound(run.name()));
    }

    private void tail(RunRecords run, Tracked t, RecordStream stream) {
        JsonlTail tail = t.tails.get(stream);
        JsonlTail.Poll poll;
        try {
            poll = tail.poll();
        } catch (IOException e) {
            LOG.warn("{}: cannot read: {}", tail.file(), e.toString());
            return;
        }
        if (poll.rewound()) {
            run.clear(stream);
            listener.accept(new Rewound(run.name(), stream, run.generation()));
        }
        for (JsonlTail.Line line : poll.lines()) {
            try {
                run.add(stream, line.record());
            } catch (IllegalArgumentException e) {
                tail.reject(line, e.getMessage());
                continue;
            }
            listener.accept(new Appended(run.name(), stream, run.count(stream) - 1, run.generation(), line.text()));
        }
        run.malformed(stream.file(), tail.malformed());
    }

    private void wholeFile(RunRecords run, Tracked t, String file) {
        Path path = run.dir().resolve(file);
        Stamp stamp = t.stamps.computeIfAbsent(file, f -> new Stamp());
        if (!stamp.changed(path)) return;
        try {
            if (!Files.exists(path)) {
                switch (file) {
                    case PLACEMENT -> run.placement(null);
                    case EVAL -> run.scores(null);
                    default -> run.config("", 0, Double.NaN);
                }
            } else if (file.equals(CONFIG)) {
                Config c = ConfigFactory.parseFile(path.toFile());
                run.config(c.hasPath("adapter.type") ? c.getString("adapter.type") : "",
                        c.hasPath("train.steps") ? c.getInt("train.steps") : 0,
                        c.hasPath("adapter.top-k") ? c.getDouble("adapter.top-k") : Double.NaN);
            } else {
                JsonNode json = JsonlTail.JSON.readTree(path.toFile());
                if (file.equals(PLACEMENT)) run.placement(RunRecords.parsePlacement(json));
                else run.scores(RunRecords.parseScores(json));
            }
            run.malformed(file, 0);
        } catch (IOException | RuntimeException e) {
            // a file caught while being written is read again when it changes; a broken one is counted
            LOG.warn("{}: cannot read: {}", path, e.getMessage());
            run.malformed(file, 1);
            return;
        }
        listener.accept(new FileChanged(run.name(), file));
    }

    private void readComparison() {
        Path path = root.resolve(COMPARISON);
        if (!comparisonStamp.changed(path)) return;
        try {
            comparison = Files.exists(path) ? JsonlTail.JSON.readTree(path.toFile()) : null;
        } catch (IOException e) {
            LOG.warn("{}: cannot read: {}", path, e.getMessage());
            return;
        }
        listener.accept(new FileChanged("", COMPARISON));
    }

    /** The tails and whole-file stamps of one run directory. */
    private static final class Tracked {
        final EnumMap<RecordStream, JsonlTail> tails = new EnumMap<>(RecordStream.class);
        final Map<String, Stamp> stamps = new HashMap<>();

        Tracked(Path dir) {
            for (RecordStream s : RecordStream.values()) tails.put(s, new JsonlTail(dir.resolve(s.file())));
        }
    }

    /** Size, modification time and file key of a whole file as last read: it is read again when one changes. */
    private static final class Stamp {
        private Object seen = "absent";

        boolean changed(Path path) {
            Object now;
            try {
                BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class);
                now = List.of(a.size(), a.lastModifiedTime(), String.valueOf(a.fileKey()));
            } catch (NoSuchFileException e) {
                now = "absent";
            } catch (IOException e) {
                return false;
            }
            if (Objects.equals(now, seen)) return false;
            seen = now;
            return true;
        }
    }
}
