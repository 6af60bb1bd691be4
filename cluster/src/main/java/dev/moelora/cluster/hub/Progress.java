package dev.moelora.cluster.hub;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A line per file on stderr: on a terminal it is rewritten in place while the bytes arrive (bytes,
 * total, rate); elsewhere (a log, a pipe) only the final line of each file is written.
 */
final class Progress {
    private static final long REDRAW_NANOS = 200_000_000L;
    private final PrintStream out;
    private final boolean terminal;
    private String file;
    private long from, total, done, started, drawn;

    Progress(PrintStream out, boolean terminal) {
        this.out = out;
        this.terminal = terminal;
    }

    void start(String file, long from, long total) {
        this.file = file;
        this.from = from;
        this.total = total;
        this.done = from;
        this.started = System.nanoTime();
        this.drawn = 0;
    }

    void advance(long bytes) {
        done += bytes;
        long now = System.nanoTime();
        if (terminal && now - drawn > REDRAW_NANOS) {
            drawn = now;
            out.print("\r  " + line() + "\033[K");
            out.flush();
        }
    }

    /** The file's final line: how it was had ("downloaded", "resumed at N bytes", "cached") and checked. */
    void done(String line) {
        if (terminal && drawn != 0) out.print("\r\033[K");
        out.println("  " + line);
        out.flush();
        file = null;
    }

    /** "model.safetensors 12.3 MB / 70.3 MB, 4.1 MB/s" for the download under way. */
    String line() {
        double seconds = Math.max(1e-3, (System.nanoTime() - started) / 1e9);
        return String.format(Locale.ROOT, "%s %s / %s, %s/s", file, bytes(done), total < 0 ? "?" : bytes(total), bytes((long) ((done - from) / seconds)));
    }

    static String bytes(long n) {
        if (n < 1024) return n + " B";
        if (n < 1024 * 1024) return String.format(Locale.ROOT, "%.1f KB", n / 1024.0);
        if (n < 1024L * 1024 * 1024) return String.format(Locale.ROOT, "%.1f MB", n / (1024.0 * 1024));
        return String.format(Locale.ROOT, "%.2f GB", n / (1024.0 * 1024 * 1024));
    }
}
