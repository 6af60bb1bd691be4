package dev.moelora.cluster.runtime;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeoutException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Starts `moelora node` JVMs on this machine from this JVM's own classpath, on free ports of
 * 127.0.0.1, each logging to a file: how the equivalence test and the runtime benchmark put
 * routers and experts in other processes. Closing stops them (forcibly, after a grace period); each
 * is given this JVM's pid (`--parent-pid`) and stops by itself when this JVM dies without closing.
 */
public final class NodeProcesses implements AutoCloseable {
    private final List<Process> processes = new ArrayList<>();
    private final List<String> names = new ArrayList<>();
    private final java.util.Set<Process> killed = java.util.concurrent.ConcurrentHashMap.newKeySet();
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
        return start(config, role, name, heap, freeTcpPort(), List.of());
    }

    /**
     * Starts `moelora node --role role -c config --set ...` on the given control port (a coordinator
     * started again takes its predecessor's, the address every node has as seed).
     */
    public Node start(Path config, String role, String name, String heap, int control, List<String> settings) throws IOException {
        int data = freeUdpPort();
        // --parent-pid: the node stops when this JVM is gone (killed, OOM-killed) instead of serving a run nobody coordinates
        List<String> args = new ArrayList<>(List.of("node", "--role", role, "-c", config.toString(),
                "--parent-pid", Long.toString(ProcessHandle.current().pid()),
                "--set", "cluster.port=" + control, "--set", "cluster.data-port=" + data));
        for (String s : settings) {
            args.add("--set");
            args.add(s);
        }
        ProcessBuilder pb = ChildJvm.command(List.of("-Xmx" + heap), "dev.moelora.cluster.Main", args)
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log(name).toFile()));
        Process p = pb.start();
        processes.add(p);
        names.add(name);
        return new Node(p, control, data);
    }

    public Path log(String name) {
        return logs.resolve(name + ".log");
    }

    public List<Process> processes() {
        return List.copyOf(processes);
    }

    /**
     * Runs {@code work} (usually the coordinator's job) while watching the nodes: when a node
     * process fails (exits non-zero) before the work ends — other than those in {@code mayExit} — the work is
     * interrupted and this fails naming the node, its exit code and the end of its log. Also fails
     * when the work takes longer than {@code timeout}. The work's own exception is rethrown as it is.
     */
    public <T> T whileAlive(Duration timeout, Callable<T> work, Process... mayExit) throws Exception {
        ExecutorService executor = Executors.newSingleThreadExecutor(r -> new Thread(r, "node-watched-work"));
        try {
            Future<T> result = executor.submit(work);
            long deadline = System.nanoTime() + timeout.toNanos();
            java.util.Set<Process> allowed = new java.util.HashSet<>(List.of(mayExit));
            while (true) {
                try {
                    return result.get(200, TimeUnit.MILLISECONDS);
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof Exception cause) throw cause;
                    throw e;
                } catch (TimeoutException e) {
                    for (int i = 0; i < processes.size(); i++) {
                        Process p = processes.get(i);
                        if (!p.isAlive() && p.exitValue() != 0 && !allowed.contains(p) && !killed.contains(p)) {
                            result.cancel(true);
                            throw new IllegalStateException("node " + names.get(i) + " exited with " + p.exitValue()
                                    + " while the run was on; the end of its log:\n" + tail(names.get(i), 30));
                        }
                    }
                    if (System.nanoTime() > deadline) {
                        result.cancel(true);
                        throw new IllegalStateException("the run did not end within " + timeout.toSeconds() + " s");
                    }
                }
            }
        } finally {
            executor.shutdownNow();
        }
    }

    /** Kills a node as {@code kill -9} does (no shutdown hook runs); {@link #whileAlive} expects its death. */
    public void kill(Node node) throws InterruptedException {
        killed.add(node.process());
        node.process().destroyForcibly();
        node.process().waitFor(30, TimeUnit.SECONDS);
    }

    /** Sends a node SIGTERM (its shutdown hooks run: a preemption); {@link #whileAlive} expects it to exit. */
    public void terminate(Node node) {
        killed.add(node.process());
        node.process().destroy();
    }

    /** The last {@code lines} lines of a node's log. */
    public String tail(String name, int lines) {
        try {
            List<String> all = Files.readAllLines(log(name));
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** Each node's exit code, by name, after waiting up to {@code seconds} for all of them; a node still running is -1. */
    public java.util.Map<String, Integer> exitCodes(long seconds) throws InterruptedException {
        awaitExit(seconds);
        java.util.Map<String, Integer> out = new java.util.LinkedHashMap<>();
        for (int i = 0; i < processes.size(); i++) out.put(names.get(i), processes.get(i).isAlive() ? -1 : processes.get(i).exitValue());
        return out;
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
