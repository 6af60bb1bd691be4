package dev.moelora.proto.frame;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A killed node's Aeron directory (term buffers in /dev/shm, i.e. memory) is removed when the next
 * embedded driver starts on the machine; directories of running processes, of a live driver and
 * other names are not touched.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class DataPlaneStaleDirectoryTest {
    @TempDir
    Path parent;

    /** A pid that ran and has exited (a real process, so no live process can own it right now but by reuse). */
    private static long deadPid() throws Exception {
        Process p = new ProcessBuilder("true").start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return p.pid();
    }

    private Path dirWithTerms(String name) throws Exception {
        Path d = Files.createDirectories(parent.resolve(name).resolve("publications"));
        Files.write(d.resolve("1-2.logbuffer"), new byte[4096]);
        return d.getParent();
    }

    @Test
    void theDirectoryOfAKilledProcessGoesAndEveryOtherStays() throws Exception {
        Path dead = dirWithTerms("moelora-aeron-" + deadPid() + "-5a8072f6");
        Path mine = dirWithTerms("moelora-aeron-" + ProcessHandle.current().pid() + "-other");
        Process alive = new ProcessBuilder("sleep", "60").start();
        try {
            Path live = dirWithTerms("moelora-aeron-" + alive.pid() + "-x");
            Path foreign = dirWithTerms("aeron-root");
            Path unnamed = dirWithTerms("moelora-aeron-notapid-x");

            assertEquals(List.of(dead), DataPlane.removeStale(parent));
            assertTrue(Files.notExists(dead), "the killed process's directory is gone");
            for (Path kept : List.of(mine, live, foreign, unnamed)) assertTrue(Files.isDirectory(kept), kept + " stays");
            assertEquals(List.of(), DataPlane.removeStale(parent), "nothing else is stale");
        } finally {
            alive.destroyForcibly();
        }
    }

    @Test
    void aRunningDriverIsNeverRemovedEvenUnderADeadProcessName() throws Exception {
        // a driver whose directory carries a dead pid (renamed, or a pid namespace we cannot see) but whose heartbeat is fresh
        Path dir = parent.resolve("moelora-aeron-" + deadPid() + "-running");
        try (DataPlane plane = DataPlane.launchEmbedded(dir, IdleSettings.defaults())) {
            assertEquals(List.of(), DataPlane.removeStale(parent));
            assertTrue(Files.isRegularFile(dir.resolve("cnc.dat")), "the live driver keeps its directory");
        }
    }
}
