package dev.moelora.cluster.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.moelora.cluster.chaos.ChaosRun;
import dev.moelora.cluster.cli.DecoderCommandsTest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A node that {@link NodeProcesses} started does not outlive the JVM that started it: real JVMs,
 * a launcher JVM ({@link StartOneNode}) that starts one node and is then killed with SIGKILL, as
 * the OOM killer killed a benchmark. The node says why it stops and stops as at the end of a run
 * (an expert closes its data plane: its Aeron directory is gone). Every process is killed at the
 * end whatever happened.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class NodeParentWatchTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"expert", "coordinator"})
    void aNodeStopsWhenTheJvmThatStartedItIsKilled(String role) throws Exception {
        int port = NodeProcesses.freeTcpPort();
        Path conf = dir.resolve("run.conf");
        // a coordinator that never gets its nodes: it waits, as an expert waits for a coordinator that never comes
        Files.writeString(conf, ChaosRun.settings(dir, "orphan", 5) + String.join("\n", "runtime.mode = cluster", "runtime.expert-nodes = 1",
                "cluster.port = " + port, "cluster.seed-nodes = [\"pekko://moelora@127.0.0.1:" + port + "\"]", "checkpoint.preemption-timeout = 5s", ""));
        Path launcherLog = dir.resolve("launcher.log"), nodeLog = dir.resolve("node.log");
        Process launcher = ChildJvm.command(List.of("-Xmx128m"), StartOneNode.class.getName(), List.of(dir.toString(), conf.toString(), role,
                Integer.toString(port))).redirectErrorStream(true).redirectOutput(launcherLog.toFile()).start();
        ProcessHandle node = null;
        try {
            long pid = Long.parseLong(awaitLine(launcherLog, Pattern.compile("node pid (\\d+)"), launcher).group(1));
            node = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("node " + pid + " is not running"));
            awaitLine(nodeLog, Pattern.compile("waiting for"), node);
            launcher.destroyForcibly();
            assertTrue(launcher.waitFor(30, TimeUnit.SECONDS), "the launcher did not die");
            try {
                node.onExit().get(30, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                fail("the " + role + " node was still running 30 s after the JVM that started it was killed; its log:\n" + Files.readString(nodeLog));
            }
            String log = Files.readString(nodeLog);
            assertTrue(log.contains("parent process " + launcher.pid() + " is gone; stopping"), log);
            assertFalse(log.contains("halting"), "the node stopped by itself, not by the fallback halt:\n" + log);
            if (role.equals("expert")) assertEquals(List.of(), aeronDirs(pid), "the expert closed its data plane");
        } finally {
            launcher.destroyForcibly();
            if (node != null) node.destroyForcibly();
        }
    }

    @Test
    void aParentPidThatIsNotRunningIsRefusedAtStart() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        assertEquals(0, gone.waitFor());
        var run = DecoderCommandsTest.moelora("node", "--role", "expert", "--parent-pid", Long.toString(gone.pid()));
        assertEquals(2, run.exit(), run.out() + run.err());
        assertTrue(run.err().contains("--parent-pid " + gone.pid() + ": no such process is running"), run.err());
    }

    /** Waits for {@code pattern} in a process's log; fails when the process ends first or after a minute. */
    private static Matcher awaitLine(Path log, Pattern pattern, Object process) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        while (System.nanoTime() < deadline) {
            String text = Files.exists(log) ? Files.readString(log) : "";
            Matcher m = pattern.matcher(text);
            if (m.find()) return m;
            boolean alive = process instanceof Process p ? p.isAlive() : ((ProcessHandle) process).isAlive();
            if (!alive) fail(log.getFileName() + ": the process ended before printing '" + pattern + "':\n" + text);
            Thread.sleep(100);
        }
        fail("no '" + pattern + "' in " + log + " within a minute:\n" + Files.readString(log));
        return null;
    }

    /** The embedded Aeron directories named after {@code pid} (DataPlane names them moelora-aeron-<pid>-<uuid>). */
    private static List<Path> aeronDirs(long pid) throws IOException {
        Path shm = Path.of("/dev/shm");
        Path parent = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
        try (Stream<Path> entries = Files.list(parent)) {
            return entries.filter(p -> p.getFileName().toString().startsWith("moelora-aeron-" + pid + "-")).toList();
        }
    }
}
