package dev.moelora.cluster.runtime;

import java.io.PrintStream;
import java.time.Duration;

/**
 * Ends a process when the process that started it is gone: the JVMs that {@link NodeProcesses}
 * starts (and a benchmark's child runs) are given their starter's pid, so a starter killed by
 * SIGKILL or the OOM killer leaves no node spinning for a run nobody coordinates. It does not
 * decide how to stop: the caller's stop does that, as its own normal shutdown would; a process
 * still alive {@code grace} after the parent ended is halted, so it never hangs. It never watches
 * anything but the one pid it was given.
 */
public final class ParentWatch {
    /** How long a stop may take beyond what the stop itself is allowed to wait for (a preemption's checkpoint). */
    public static final int GRACE_SECONDS = 30;
    public static final Duration GRACE = Duration.ofSeconds(GRACE_SECONDS);

    private ParentWatch() {}

    /**
     * Runs {@code stop} once process {@code pid} has ended (it says so on {@code out} first), and
     * halts this JVM with status 1 if it is still running {@code grace} later. Fails at once when
     * there is no such process: a parent gone before the child started is a parent gone.
     */
    public static void watch(long pid, PrintStream out, Duration grace, Runnable stop) {
        ProcessHandle parent = ProcessHandle.of(pid).filter(ProcessHandle::isAlive)
                .orElseThrow(() -> new IllegalArgumentException("--parent-pid " + pid + ": no such process is running"));
        // for a process that is not our own child, the JDK polls whether it is alive (at most 5 s apart)
        parent.onExit().thenRun(() -> {
            out.println("parent process " + pid + " is gone; stopping");
            Thread halt = new Thread(() -> {
                try {
                    Thread.sleep(grace.toMillis());
                } catch (InterruptedException e) {
                    return;
                }
                out.println("still running " + grace.toSeconds() + " s after parent process " + pid + " ended; halting");
                out.flush();
                System.err.flush();
                Runtime.getRuntime().halt(1);
            }, "moelora-parent-gone-halt");
            halt.setDaemon(true);
            halt.start();
            stop.run();
        });
    }
}
