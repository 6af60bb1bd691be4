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

    @Override
    public synchronized void close() throws IOException {
        for (BufferedWriter w : files.values()) w.close();
        files.clear();
    }
}
