package dev.moelora.cluster.observe;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.EnumMap;
import java.util.Map;

/**
 * Writes each record stream to its JSONL file in the run directory, one line per record, flushed
 * at once (a dashboard or a person tails them while the run goes on). Appends: a resumed run
 * continues its files. A file is created when its stream gets its first record. It never reads
 * back what it wrote.
 */
public final class JsonlRecorder implements RunRecorder {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path dir;
    private final Map<RecordStream, BufferedWriter> files = new EnumMap<>(RecordStream.class);

    public JsonlRecorder(Path runDir) {
        this.dir = runDir;
    }

    @Override
    public synchronized void record(RecordStream stream, ObjectNode line) {
        Path file = dir.resolve(stream.file());
        try {
            BufferedWriter out = files.get(stream);
            if (out == null) {
                out = Files.newBufferedWriter(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
                files.put(stream, out);
            }
            out.write(JSON.writeValueAsString(line));
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Keeps, in metrics.jsonl, routing.jsonl and nodes.jsonl, only the lines of steps up to
     * {@code step} (events.jsonl is the run's history and keeps everything). Each file is rewritten
     * under a temporary name and moved over the old one.
     */
    @Override
    public synchronized void rewind(int step) throws IOException {
        close();
        rewindFiles(dir, step);
    }

    /**
     * Keeps, in each per-step file of {@code runDir} (metrics.jsonl, routing.jsonl, nodes.jsonl),
     * only the lines of steps up to {@code step}. A torn last line (a run killed while writing it)
     * is dropped; any other line that is not JSON with an integer step is an error naming the file
     * and line. A file that changes is rewritten durably (temporary name, fsync, rename).
     */
    public static void rewindFiles(Path runDir, long step) throws IOException {
        for (RecordStream stream : new RecordStream[] {RecordStream.METRICS, RecordStream.ROUTING, RecordStream.NODES}) {
            Path file = runDir.resolve(stream.file());
            if (!Files.isRegularFile(file)) continue;
            java.util.List<String> lines = Files.readAllLines(file, java.nio.charset.StandardCharsets.UTF_8);
            java.util.List<String> kept = new java.util.ArrayList<>();
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                com.fasterxml.jackson.databind.JsonNode n;
                try {
                    n = JSON.readTree(line);
                } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                    if (i == lines.size() - 1) continue;
                    throw new IOException(file + ": line " + (i + 1) + " is not JSON: " + e.getOriginalMessage(), e);
                }
                com.fasterxml.jackson.databind.JsonNode s = n == null ? null : n.get("step");
                if (s == null || !s.canConvertToLong()) throw new IOException(file + ": line " + (i + 1) + " has no integer 'step'");
                if (s.asLong() <= step) kept.add(line);
            }
            if (kept.size() == lines.size()) continue;
            StringBuilder text = new StringBuilder();
            for (String line : kept) text.append(line).append('\n');
            dev.moelora.model.files.DurableFiles.write(file, text.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
    }

    @Override
    public synchronized void close() throws IOException {
        for (BufferedWriter w : files.values()) w.close();
        files.clear();
    }
}
