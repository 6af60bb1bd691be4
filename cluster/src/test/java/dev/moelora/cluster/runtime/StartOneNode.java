package dev.moelora.cluster.runtime;

import java.nio.file.Path;

/**
 * A JVM that starts one node with {@link NodeProcesses} and then waits forever, never closing
 * it: the starter {@link NodeParentWatchTest} kills with SIGKILL, as the OOM killer killed a
 * benchmark's JVM. Prints "node pid N" once the node is started.
 *
 * <p>Arguments: the directory for the node's log, its config file, its role, its control port.
 */
public final class StartOneNode {
    private StartOneNode() {}

    public static void main(String[] args) throws Exception {
        NodeProcesses nodes = new NodeProcesses(Path.of(args[0]));
        NodeProcesses.Node node = nodes.start(Path.of(args[1]), args[2], "node", "512m", Integer.parseInt(args[3]), java.util.List.of());
        System.out.println("node pid " + node.process().pid());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
