package dev.moelora.cluster.bench;

import io.aeron.AeronVersion;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The machine a benchmark ran on, printed first by every benchmark so that a figure in
 * BENCHMARKS.md always says where it came from: CPU model and cores, OS, JDK, ND4J backend, the
 * OpenMP wait policy (it decides ND4J's speed on small machines) and the Aeron version. Also the
 * one median every benchmark reports, and the load average a figure was taken under (other
 * processes on a small machine move every timing). It measures nothing itself.
 */
public final class Machine {
    private Machine() {}

    /** One line: "machine: CPU, N cores, OS version arch, JDK ... (vendor), ND4J backend ..., OMP_WAIT_POLICY=..., Aeron ...". */
    public static String describe() {
        return String.format(Locale.ROOT, "machine: %s, %d cores, %s %s %s, JDK %s (%s), ND4J backend %s, OMP_WAIT_POLICY=%s, Aeron %s",
                cpu(), Runtime.getRuntime().availableProcessors(), System.getProperty("os.name"), System.getProperty("os.version"),
                System.getProperty("os.arch"), System.getProperty("java.version"), System.getProperty("java.vendor"),
                Nd4j.getBackend().getClass().getSimpleName(), System.getenv().getOrDefault("OMP_WAIT_POLICY", "unset"), AeronVersion.VERSION);
    }

    private static String cpu() {
        Path info = Path.of("/proc/cpuinfo");
        if (!Files.isReadable(info)) return "unknown CPU";
        try (var lines = Files.lines(info)) {
            return lines.filter(l -> l.startsWith("model name")).findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("unknown CPU");
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + info, e);
        }
    }

    /** "1.02 0.95 0.80" from /proc/loadavg (1, 5 and 15 minutes), or "unknown" where there is none. */
    public static String load() {
        Path avg = Path.of("/proc/loadavg");
        if (!Files.isReadable(avg)) return "unknown";
        try {
            String[] f = Files.readString(avg).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + avg, e);
        }
    }

    /** The median of a benchmark's timings (the upper one of an even count). */
    public static double median(double[] timings) {
        if (timings.length == 0) throw new IllegalArgumentException("no timings");
        double[] s = timings.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
