package dev.moelora.cluster.bench;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** A benchmark's run in a child JVM that fails fails the benchmark, naming the child's exit code and log. */
class TimedRunsTest {
    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void aChildRunThatFailsFailsWithItsExitCodeAndLog(@TempDir Path work) throws Exception {
        Path conf = TimedRuns.write(work, "broken", "adapter.type = moelora\nruntime.mode = nonsense\nrun.dir = \""
                + work.toString().replace("\\", "/") + "\"\ndashboard.port = 0\n");
        var failed = assertThrows(IllegalStateException.class, () -> TimedRuns.inChildJvm(conf));
        Path log = work.resolve("broken.log");
        assertTrue(failed.getMessage().startsWith("the broken run's JVM exited with 1 and no result; its log: " + log), failed.getMessage());
        assertTrue(failed.getMessage().contains("runtime.mode must be local or cluster"), failed.getMessage());
        assertTrue(Files.readString(log).contains("runtime.mode must be local or cluster"), "the child's log has its error");
    }
}
