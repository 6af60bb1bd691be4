package dev.moelora.cluster.runtime;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Starts `moelora node` JVMs on this machine from this JVM's own classpath, on free ports of
 * 127.0.0.1, each logging to a file: how the equivalence test and the runtime benchmark put
 * routers and experts in other processes. Closing stops them (forcibly, after a grace period).
 */
public final class NodeProcesses implements AutoCloseable {
    private final List<Process> processes = new ArrayList<>();
    private final Path logs;

    /** @param logs directory for one log file per node */
    public NodeProcesses(Path logs) {
        this.logs = logs;
    }

    /** A free TCP port on this machine (for cluster.port). */
    public static int freeTcpPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** A free UDP port on this machine (for cluster.data-port). */
    public static int freeUdpPort() throws IOException {
        try (DatagramSocket s = new DatagramSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** A started node: its process and the ports it was given. */
    public record Node(Process process, int controlPort, int dataPort) {}

    /** Starts `moelora node --role role -c config` with its own control and data ports. */
    public Node start(Path config, String role, String name, String heap) throws IOException {
        int control = freeTcpPort(), data = freeUdpPort();
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "-Xmx" + heap,
                "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED",
                "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), "dev.moelora.cluster.Main", "node", "--role", role, "-c", config.toString(),
                "--set", "cluster.port=" + control, "--set", "cluster.data-port=" + data));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log(name).toFile());
        pb.environment().putIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
        Process p = pb.start();
        processes.add(p);
        return new Node(p, control, data);
    }

    public Path log(String name) {
        return logs.resolve(name + ".log");
    }

    public List<Process> processes() {
        return List.copyOf(processes);
    }

    /** Waits for every node to exit by itself; true when all did within the time. */
    public boolean awaitExit(long seconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        for (Process p : processes) {
            long left = deadline - System.nanoTime();
            if (left <= 0 || !p.waitFor(left, TimeUnit.NANOSECONDS)) return false;
        }
        return true;
    }

    @Override
    public void close() throws InterruptedException {
        for (Process p : processes) p.destroy();
        for (Process p : processes) {
            if (!p.waitFor(10, TimeUnit.SECONDS)) p.destroyForcibly();
        }
    }
}
