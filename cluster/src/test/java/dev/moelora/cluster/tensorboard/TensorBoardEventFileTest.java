package dev.moelora.cluster.tensorboard;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.model.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The event files as files: their names, the file-version record, the TFRecord framing with its two
 * masked CRCs (proved real by corrupting and cutting files and watching read_tfevents.py, which
 * shares no code with the writer, report where), a new file per writer start, and a record on disk
 * as soon as its line has been recorded.
 */
class TensorBoardEventFileTest {
    @TempDir
    Path dir;

    @Test
    void aFileIsNamedAsTensorFlowNamesItAndOpensWithTheFileVersion() throws Exception {
        Path file;
        try (EventFileWriter w = EventFileWriter.open(dir, RecordedRun.CLOCK, "node-7.example/x y")) {
            file = w.file();
        }
        assertEquals(dir.resolve("events.out.tfevents.1700000000.node-7.example_x_y"), file);
        List<JsonNode> events = PythonScript.readAll(file).events();
        assertEquals(1, events.size());
        JsonNode first = events.get(0);
        assertEquals("brain.Event:2", first.get("file_version").textValue());
        assertEquals(1_700_000_000.25, first.get("wall_time").doubleValue());
        assertEquals(0, first.get("step").longValue());
        assertEquals(0, first.get("values").size());
    }

    @Test
    void aFlippedByteAnywhereInARecordIsACrcMismatchNamingTheRecord() throws Exception {
        Path file = onlyFile(RecordedRun.write(dir));
        byte[] good = Files.readAllBytes(file);
        List<JsonNode> events = PythonScript.readAll(file).events();
        int record = 3; // the routing line of the 8-expert module
        long offset = events.get(record).get("offset").longValue();
        long length = events.get(record + 1).get("offset").longValue() - offset - 16;
        assertTrue(length > 255, "the record's length needs more than its lowest byte: " + length);
        record Flip(long at, String report) {}
        List<Flip> flips = List.of(
                new Flip(offset, "length CRC mismatch"),                  // the length itself
                new Flip(offset + 9, "length CRC mismatch"),              // the length's CRC
                new Flip(offset + 12 + length / 2, "data CRC mismatch"),  // the data
                new Flip(offset + 12 + length + 3, "data CRC mismatch")); // the data's CRC
        for (Flip flip : flips) {
            byte[] bad = good.clone();
            bad[(int) flip.at()] ^= 0x10;
            Files.write(file, bad);
            PythonScript.Result r = PythonScript.readTfevents(file);
            String what = "byte " + flip.at() + " flipped: " + r.describe();
            assertEquals(1, r.exit(), what);
            assertTrue(r.stderr().contains("record " + record + " ") && r.stderr().contains(flip.report()), what);
            assertEquals("", r.stdout(), what);
        }
    }

    @Test
    void aTruncatedFileIsReportedNamingTheRecordItEndsIn() throws Exception {
        Path file = onlyFile(RecordedRun.write(dir));
        byte[] whole = Files.readAllBytes(file);
        List<JsonNode> events = PythonScript.readAll(file).events();
        int last = events.size() - 1;
        long lastOffset = events.get(last).get("offset").longValue();
        for (long size : new long[] {whole.length - 1, whole.length - 6, lastOffset + 5}) {
            Files.write(file, Arrays.copyOf(whole, (int) size));
            PythonScript.Result r = PythonScript.readTfevents(file);
            assertEquals(1, r.exit(), "cut to " + size + " bytes: " + r.describe());
            assertTrue(r.stderr().contains("record " + last + " ") && r.stderr().contains("truncated"), "cut to " + size + " bytes: " + r.describe());
        }
    }

    @Test
    void eachLineIsOnDiskWhenRecordReturns() throws Exception {
        try (TensorBoardRecorder tb = new TensorBoardRecorder(dir, RecordedRun.CLOCK)) {
            tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(1, 2, 0.5, 0.0, 1e-3, 1.0, 4, 1.0)));
            assertEquals(0.5, PythonScript.readAll(tb.file()).scalars().get(new RecordedRun.Key(1, "loss/total")), "step 1 before step 2 or close");
            tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(2, 2, 0.25, 0.0, 1e-3, 1.0, 4, 1.0)));
            assertEquals(3, PythonScript.readAll(tb.file()).events().size());
        }
    }

    @Test
    void aRestartWritesANewFileBesideTheOldOneAndLeavesItAsItWas() throws Exception {
        Path first;
        try (TensorBoardRecorder tb = new TensorBoardRecorder(dir, RecordedRun.CLOCK)) {
            tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(1, 3, 3.0, 0.0, 1e-3, 1.0, 4, 1.0)));
            first = tb.file();
        }
        byte[] before = Files.readAllBytes(first);
        Path second, third;
        try (TensorBoardRecorder tb = new TensorBoardRecorder(dir, RecordedRun.CLOCK)) { // the same second: the name is taken
            tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(2, 3, 2.0, 0.0, 1e-3, 1.0, 4, 1.0)));
            second = tb.file();
        }
        Clock later = Clock.fixed(RecordedRun.START.plusSeconds(60), ZoneOffset.UTC);
        try (TensorBoardRecorder tb = new TensorBoardRecorder(dir, later)) {
            tb.record(RecordStream.METRICS, Records.metrics(new Trainer.StepMetrics(3, 3, 1.0, 0.0, 1e-3, 1.0, 4, 1.0)));
            third = tb.file();
        }
        assertArrayEquals(before, Files.readAllBytes(first), "the first file is left as it was");
        assertEquals(first.getFileName() + ".1", second.getFileName().toString());
        assertTrue(third.getFileName().toString().startsWith("events.out.tfevents.1700000060."), third.toString());
        List<JsonNode> events = PythonScript.readAll(first.getParent()).events();
        assertEquals(List.of(first, second, third).stream().map(f -> f.getFileName().toString()).toList(),
                events.stream().filter(e -> e.has("file_version")).map(e -> e.get("file").textValue()).toList(),
                "every file opens with its file version, and name order is start order");
        assertEquals(List.of(0L, 1L, 0L, 2L, 0L, 3L), events.stream().map(e -> e.get("step").longValue()).toList());
    }

    private static Path onlyFile(Path tensorboard) throws Exception {
        try (Stream<Path> files = Files.list(tensorboard)) {
            List<Path> all = files.toList();
            assertEquals(1, all.size(), all.toString());
            return all.get(0);
        }
    }
}
