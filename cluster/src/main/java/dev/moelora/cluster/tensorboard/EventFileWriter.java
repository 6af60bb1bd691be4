package dev.moelora.cluster.tensorboard;

import dev.moelora.proto.tensorboard.Event;
import dev.moelora.proto.tensorboard.HistogramProto;
import dev.moelora.proto.tensorboard.SessionLog;
import dev.moelora.proto.tensorboard.Summary;
import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.util.List;

/**
 * One TensorBoard event file, {@code <dir>/events.out.tfevents.<unix seconds>.<hostname>}: the
 * file-version event first, then one Event per {@link #write} holding that step's values. Each
 * writer start makes a new file, as TensorFlow's writers do, so a resumed run adds a file beside
 * the old ones and TensorBoard reads them in name order (a later start sorts later). It never
 * opens an existing file: when the name is taken (a second start within the same second) it adds
 * {@code .1}, {@code .2}, ... to the name. One thread at a time.
 */
public final class EventFileWriter implements Closeable {
    /** What TensorBoard expects in a file's first event; the 2 selects its restart handling (SessionLog-based, which we never write). */
    public static final String FILE_VERSION = "brain.Event:2";

    private final Path file;
    private final TfRecordWriter records;
    private final Clock clock;

    private EventFileWriter(Path file, TfRecordWriter records, Clock clock) {
        this.file = file;
        this.records = records;
        this.clock = clock;
    }

    /** Creates {@code dir} if needed and a new event file in it named by the clock and this machine's host name. */
    public static EventFileWriter open(Path dir, Clock clock) throws IOException {
        return open(dir, clock, hostName());
    }

    static EventFileWriter open(Path dir, Clock clock, String host) throws IOException {
        Files.createDirectories(dir);
        Instant now = clock.instant();
        String base = "events.out.tfevents." + now.getEpochSecond() + "." + host.replaceAll("[^A-Za-z0-9._-]", "_");
        for (int attempt = 0; ; attempt++) {
            Path file = dir.resolve(attempt == 0 ? base : base + "." + attempt);
            OutputStream stream;
            try {
                stream = Files.newOutputStream(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            } catch (FileAlreadyExistsException taken) {
                continue; // the next suffix: a start never shares a file with another
            }
            EventFileWriter writer = new EventFileWriter(file, new TfRecordWriter(new BufferedOutputStream(stream)), clock);
            try {
                writer.append(Event.newBuilder().setWallTime(seconds(now)).setFileVersion(FILE_VERSION).build());
                writer.flush();
            } catch (IOException e) {
                try {
                    writer.close();
                } catch (IOException closing) {
                    e.addSuppressed(closing);
                }
                throw e;
            }
            return writer;
        }
    }

    public Path file() {
        return file;
    }

    /** One Event at {@code step} with these values, stamped with the clock's time. Buffered until {@link #flush()}. */
    public void write(long step, List<Summary.Value> values) throws IOException {
        append(Event.newBuilder()
                .setWallTime(seconds(clock.instant()))
                .setStep(step)
                .setSummary(Summary.newBuilder().addAllValue(values))
                .build());
    }

    /**
     * A session start at {@code step}: TensorBoard drops the events of later steps it has read
     * (purging orphaned data, as after a TensorFlow restart), since they will be written again.
     */
    public void restart(long step, String why) throws IOException {
        append(Event.newBuilder()
                .setWallTime(seconds(clock.instant()))
                .setStep(step)
                .setSessionLog(SessionLog.newBuilder().setStatus(SessionLog.SessionStatus.START).setMsg(why))
                .build());
    }

    /** Hands everything written so far to the operating system: a live TensorBoard sees it. */
    public void flush() throws IOException {
        records.flush();
    }

    @Override
    public void close() throws IOException {
        records.close();
    }

    /** A scalar as TensorBoard stores it: float32, so {@code value} is rounded to the nearest float. */
    public static Summary.Value scalar(String tag, double value) {
        return Summary.Value.newBuilder().setTag(tag).setSimpleValue((float) value).build();
    }

    public static Summary.Value histogram(String tag, HistogramProto histogram) {
        return Summary.Value.newBuilder().setTag(tag).setHisto(histogram).build();
    }

    private void append(Event event) throws IOException {
        records.write(event.toByteArray());
    }

    private static double seconds(Instant t) {
        return t.getEpochSecond() + t.getNano() / 1e9;
    }

    /** The host name TensorFlow would put in the file name; "localhost" when the machine cannot name itself. */
    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }
}
