package dev.moelora.proto.frame;

import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import io.aeron.Subscription;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import io.aeron.CommonContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.agrona.CloseHelper;
import org.agrona.IoUtil;
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
 * and when it closes, and directories of embedded drivers whose processes were killed are deleted
 * when another one starts ({@link #removeStale}).
 *
 * <p>Must never leave a driver running or, for an embedded driver, its directory behind after
 * {@link #close()}, and never hand one publication to two senders: {@link #publication} makes a new
 * exclusive publication (its own session) per call.
 */
public final class DataPlane implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DataPlane.class);

    private static final String PREFIX = "moelora-aeron-";
    private static final Pattern STALE_NAME = Pattern.compile(Pattern.quote(PREFIX) + "(\\d+)-.+");
    /** A driver whose heartbeat is older than this is not running (Aeron's default driver timeout is 10 s). */
    private static final long STALE_AFTER_MS = 10_000;

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
        removeStale(parent);
        return launchEmbedded(parent.resolve(PREFIX + ProcessHandle.current().pid() + "-" + UUID.randomUUID()), idle);
    }

    /**
     * Deletes the embedded-driver directories under {@code parent} that a killed process left: a
     * node ended by SIGKILL (a chaos test, the OOM killer, a preempted job) never runs its
     * shutdown, and its term buffers stay in /dev/shm, which is memory: a few hundred MB per node,
     * so a machine that restarts nodes runs out of RAM. A directory is stale when its name's
     * process is no longer running and its driver's heartbeat has stopped (Aeron's own liveness
     * check); anything else — this process's, a live process's, other names — is left alone.
     * Returns what it deleted; a directory it cannot delete is logged and skipped.
     */
    static List<Path> removeStale(Path parent) {
        List<Path> removed = new ArrayList<>();
        try (Stream<Path> entries = Files.list(parent)) {
            for (Path dir : (Iterable<Path>) entries::iterator) {
                Matcher m = STALE_NAME.matcher(dir.getFileName().toString());
                if (!m.matches() || !Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) continue;
                long pid = Long.parseLong(m.group(1));
                if (pid == ProcessHandle.current().pid() || ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) continue;
                if (CommonContext.isDriverActive(dir.toFile(), STALE_AFTER_MS, message -> { })) continue;
                try {
                    IoUtil.delete(dir.toFile(), false);
                    removed.add(dir);
                    log.info("removed {}: the Aeron directory of process {}, which is no longer running", dir, pid);
                } catch (RuntimeException e) {
                    log.warn("could not remove the stale Aeron directory {} of process {}: {}", dir, pid, e.toString());
                }
            }
        } catch (IOException | UncheckedIOException e) {
            log.warn("could not look for stale Aeron directories in {}: {}", parent, e.toString());
        }
        return removed;
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
