package dev.moelora.proto.frame;

import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import io.aeron.Subscription;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import org.agrona.CloseHelper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A process's Aeron: an embedded media driver (the default) or a connection to an external one, and
 * the publications and subscriptions tensor frames travel on. Channel strings come from
 * {@link ChannelSettings}.
 *
 * <p>The embedded driver runs {@link ThreadingMode#SHARED} (conductor, sender and receiver on one
 * thread: this machine has 2 cores) and backs off to parks of {@link IdleSettings#driverMaxPark()}
 * when idle, so an idle data plane does not burn a core. Its directory is deleted when it starts
 * and when it closes.
 *
 * <p>Must never leave a driver running or, for an embedded driver, its directory behind after
 * {@link #close()}, and never hand one publication to two senders: {@link #publication} makes a new
 * exclusive publication (its own session) per call.
 */
public final class DataPlane implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DataPlane.class);

    private final MediaDriver driver; // null when connected to an external driver
    private final Aeron aeron;

    private DataPlane(MediaDriver driver, String aeronDirectory) {
        this.driver = driver;
        this.aeron = Aeron.connect(new Aeron.Context()
                .aeronDirectoryName(aeronDirectory)
                .errorHandler(e -> log.error("Aeron client error", e)));
    }

    /**
     * Starts an embedded driver in a fresh directory: under /dev/shm where it exists (as Aeron's own
     * default; memory, not disk, backs the term buffers), else under java.io.tmpdir.
     */
    public static DataPlane launchEmbedded(IdleSettings idle) {
        Path shm = Path.of("/dev/shm");
        Path parent = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
        return launchEmbedded(parent.resolve("moelora-aeron-" + ProcessHandle.current().pid() + "-" + UUID.randomUUID()), idle);
    }

    /** As {@link #launchEmbedded(IdleSettings)} with {@link IdleSettings#defaults()}. */
    public static DataPlane launchEmbedded() {
        return launchEmbedded(IdleSettings.defaults());
    }

    /** Starts an embedded driver in {@code directory}, which it owns: anything there is deleted at start and close. */
    public static DataPlane launchEmbedded(Path directory, IdleSettings idle) {
        MediaDriver driver = MediaDriver.launchEmbedded(new MediaDriver.Context()
                .aeronDirectoryName(directory.toString())
                .threadingMode(ThreadingMode.SHARED)
                .sharedIdleStrategy(idle.driver())
                .dirDeleteOnStart(true)
                .dirDeleteOnShutdown(true)
                .termBufferSparseFile(true)
                .errorHandler(e -> log.error("Aeron media driver error", e)));
        try {
            return new DataPlane(driver, driver.aeronDirectoryName());
        } catch (RuntimeException e) {
            try {
                driver.close();
            } catch (RuntimeException closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    /** Connects to a media driver already running with {@code aeronDirectory} (its aeron.dir); close() leaves that driver running. */
    public static DataPlane connect(String aeronDirectory) {
        return new DataPlane(null, aeronDirectory);
    }

    /** A new exclusive publication: give it to exactly one {@link TensorFrameSender}. Closed with this data plane. */
    public ExclusivePublication publication(String channel, int streamId) {
        return aeron.addExclusivePublication(channel, streamId);
    }

    /** Poll it with a {@link TensorFrameReceiver} itself (it reassembles fragments; no FragmentAssembler). Closed with this data plane. */
    public Subscription subscription(String channel, int streamId) {
        return aeron.addSubscription(channel, streamId);
    }

    /** The directory clients use to reach the driver (aeron.dir). */
    public String aeronDirectory() {
        return aeron.context().aeronDirectoryName();
    }

    /** Closes the client (with every publication and subscription made here), then the embedded driver, which deletes its directory. */
    @Override
    public void close() {
        CloseHelper.closeAll(aeron, driver);
    }
}
