package dev.moelora.cluster.runtime;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The command of a JVM started from this one: this JVM's java and classpath, the flags every
 * moelora JVM needs (as the launcher script gives them) and OMP_WAIT_POLICY=PASSIVE unless the
 * environment sets it. How node processes and a benchmark's child runs are started; it starts
 * nothing itself.
 */
public final class ChildJvm {
    private ChildJvm() {}

    /** {@code java <jvmOptions> <moelora flags> -cp <this classpath> mainClass args...}, not yet started. */
    public static ProcessBuilder command(List<String> jvmOptions, String mainClass, List<String> args) {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java));
        cmd.addAll(jvmOptions);
        // Aeron's Agrona needs jdk.internal.misc; JDK 22+ asks native libraries (ND4J) to be allowed explicitly;
        // the fused kernels' float lanes use the incubating Vector API
        cmd.addAll(List.of("--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED",
                "--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), mainClass));
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        // ND4J's OpenMP threads spin between ops by default and starve OpenBLAS's on a small machine
        pb.environment().putIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
        return pb;
    }

    /** This JVM's own -Xmx option, if it was given one: a child that should have the memory this JVM has. */
    public static List<String> thisHeap() {
        List<String> heap = new ArrayList<>();
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("-Xmx")) heap = List.of(a);
        }
        return heap;
    }
}
