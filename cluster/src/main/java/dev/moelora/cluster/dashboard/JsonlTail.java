package dev.moelora.cluster.dashboard;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads one JSONL record file incrementally while a run appends to it: each poll returns the
 * complete lines added since the last one, parsed; a last line without its newline waits for the
 * next poll. A file that shrank, was replaced (another file key) or whose first bytes changed (a
 * recovered run rewinds its files) is read again from its start, and the poll says so. A line that
 * is not one JSON object is counted and skipped with a warning naming the file and the line; it
 * never stops the reading. It never writes to the file.
 */
final class JsonlTail {
    private static final Logger LOG = LoggerFactory.getLogger(JsonlTail.class);
    static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    /** Bytes at the start of the file remembered to notice a rewrite that did not shrink it. */
    private static final int HEAD = 64;
    private static final int CHUNK = 1 << 20;

    /** What one poll found; {@code rewound}: the file was rewritten and {@code lines} are its start again. */
    record Poll(boolean rewound, List<Line> lines) {}

    /** A record line: its 1-based line number in the file, its text, its object. */
    record Line(int number, String text, ObjectNode record) {}

    private final Path file;
    private final boolean quiet;
    private long offset;            // bytes of complete lines consumed
    private byte[] head = new byte[0];
    private Object fileKey;
    private int lineNumber;
    private int malformed;

    /** A tail that warns about each malformed line. */
    JsonlTail(Path file) {
        this(file, false);
    }

    /** {@code quiet}: malformed lines are counted but not logged (a second reader of a file already tailed). */
    JsonlTail(Path file, boolean quiet) {
        this.file = file;
        this.quiet = quiet;
    }

    Path file() {
        return file;
    }

    /** Lines skipped as malformed since the file was last read from its start. */
    int malformed() {
        return malformed;
    }

    /** The complete lines appended since the last poll (all of them, from the start, after a rewrite). */
    Poll poll() throws IOException {
        BasicFileAttributes attributes;
        try {
            attributes = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            boolean hadContent = offset > 0 || lineNumber > 0;
            if (hadContent) rewind();
            return new Poll(hadContent, List.of());
        }
        long size = attributes.size();
        boolean rewound = false;
        if (offset > 0 && (size < offset || !Objects.equals(attributes.fileKey(), fileKey) || !sameStart())) {
            rewind();
            rewound = true;
        }
        fileKey = attributes.fileKey();
        if (size == offset) return new Poll(rewound, List.of());
        List<Line> lines = new ArrayList<>();
        read(size, lines);
        if (head.length < Math.min(HEAD, offset)) head = readAt(0, (int) Math.min(HEAD, offset));
        return new Poll(rewound, lines);
    }

    /** Counts a line the caller rejected (valid JSON, but not a record of its stream) and says why. */
    void reject(Line line, String reason) {
        malformed++;
        if (!quiet) LOG.warn("{}:{}: record skipped: {}", file, line.number(), reason);
    }

    private void rewind() {
        offset = 0;
        head = new byte[0];
        lineNumber = 0;
        malformed = 0;
    }

    /** The remembered first bytes are still there, and the last byte consumed is still a newline. */
    private boolean sameStart() throws IOException {
        if (!Arrays.equals(readAt(0, head.length), head)) return false;
        byte[] last = readAt(offset - 1, 1);
        return last.length == 1 && last[0] == '\n';
    }

    private byte[] readAt(long position, int length) throws IOException {
        try (SeekableByteChannel ch = Files.newByteChannel(file)) {
            ch.position(position);
            ByteBuffer buf = ByteBuffer.allocate(length);
            while (buf.hasRemaining() && ch.read(buf) > 0) {
                // keep reading until the requested bytes are in or the file ends
            }
            return Arrays.copyOf(buf.array(), buf.position());
        }
    }

    /** Reads [offset, size) and takes every line that ends in a newline; the rest waits. */
    private void read(long size, List<Line> out) throws IOException {
        try (SeekableByteChannel ch = Files.newByteChannel(file)) {
            ch.position(offset);
            byte[] chunk = new byte[(int) Math.min(CHUNK, size - offset)];
            ByteArrayOutputStream carry = new ByteArrayOutputStream();
            long position = offset;
            while (position < size) {
                ByteBuffer buf = ByteBuffer.wrap(chunk, 0, (int) Math.min(chunk.length, size - position));
                int n = ch.read(buf);
                if (n <= 0) break;
                int start = 0;
                for (int i = 0; i < n; i++) {
                    if (chunk[i] != '\n') continue;
                    String text;
                    if (carry.size() > 0) {
                        carry.write(chunk, start, i - start);
                        text = carry.toString(StandardCharsets.UTF_8);
                        carry.reset();
                    } else {
                        text = new String(chunk, start, i - start, StandardCharsets.UTF_8);
                    }
                    offset = position + i + 1;
                    take(text, out);
                    start = i + 1;
                }
                carry.write(chunk, start, n - start);
                position += n;
            }
        }
    }

    private void take(String text, List<Line> out) {
        lineNumber++;
        String line = text.endsWith("\r") ? text.substring(0, text.length() - 1) : text;
        if (line.isBlank()) return;
        try {
            JsonNode node = JSON.readTree(line);
            if (node instanceof ObjectNode object) {
                out.add(new Line(lineNumber, line, object));
                return;
            }
            skip("not a JSON object");
        } catch (JsonProcessingException e) {
            skip(e.getOriginalMessage());
        }
    }

    private void skip(String reason) {
        malformed++;
        if (!quiet) LOG.warn("{}:{}: malformed record skipped: {}", file, lineNumber, reason);
    }
}
