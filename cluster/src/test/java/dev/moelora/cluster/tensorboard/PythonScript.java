package dev.moelora.cluster.tensorboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a script of src/test/python in its own process with a timeout, its output in files (a full
 * pipe can never stall it). A process that outlives its timeout is killed and fails the test; an
 * interpreter that cannot be started is an IOException naming it, which fails the test too.
 */
public final class PythonScript {
    public static final Path SCRIPTS = Path.of("src/test/python");

    public record Result(int exit, String stdout, String stderr) {
        public String describe() {
            return "exit " + exit + "\nstdout: " + stdout + "\nstderr: " + stderr;
        }
    }

    private PythonScript() {}

    /** read_tfevents.py, the reader that shares nothing with the writer, over files or directories. */
    static Result readTfevents(Path... paths) throws IOException, InterruptedException {
        return run("python3", "read_tfevents.py", Duration.ofSeconds(60), paths);
    }

    /** read_tfevents.py's events and values; fails the test unless it read everything. */
    static RecordedRun.Read readAll(Path... paths) throws IOException, InterruptedException {
        Result r = readTfevents(paths);
        assertEquals(0, r.exit(), () -> "read_tfevents.py could not read " + List.of(paths) + ": " + r.describe());
        return RecordedRun.parseIndependentReader(r.stdout());
    }

    static Result run(String python, String script, Duration timeout, Path... args) throws IOException, InterruptedException {
        Path file = SCRIPTS.resolve(script);
        assertTrue(Files.isRegularFile(file), file.toAbsolutePath() + " is missing (the test runs from the cluster module directory)");
        List<String> command = new ArrayList<>(List.of(python, file.toString()));
        for (Path a : args) command.add(a.toString());
        return run(command, timeout);
    }

    public static Result run(List<String> command, Duration timeout) throws IOException, InterruptedException {
        return run(command, java.util.Map.of(), timeout);
    }

    /** The same with these variables added to (or, for a null value, removed from) the child's environment. */
    public static Result run(List<String> command, java.util.Map<String, String> env, Duration timeout) throws IOException, InterruptedException {
        File out = File.createTempFile("python-out", ".txt");
        File err = File.createTempFile("python-err", ".txt");
        try {
            Process p;
            try {
                ProcessBuilder pb = new ProcessBuilder(command).redirectOutput(out).redirectError(err);
                env.forEach((k, v) -> {
                    if (v == null) pb.environment().remove(k);
                    else pb.environment().put(k, v);
                });
                p = pb.start();
            } catch (IOException e) {
                throw new IOException(command.get(0) + " could not be started (is it installed and on the PATH?): " + e.getMessage(), e);
            }
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                fail(String.join(" ", command) + " did not finish within " + timeout + "; stderr: " + Files.readString(err.toPath()));
            }
            return new Result(p.exitValue(), Files.readString(out.toPath()), Files.readString(err.toPath()));
        } finally {
            Files.deleteIfExists(out.toPath());
            Files.deleteIfExists(err.toPath());
        }
    }
}
