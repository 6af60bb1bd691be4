package dev.moelora.cluster.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.moelora.cluster.job.Preemption;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Preemption: SIGTERM to a real `moelora train` JVM makes it write a checkpoint at its next step
 * boundary, say so and exit 0; resuming from it gives the uninterrupted run's adapter bit for bit.
 * In-process, a requested preemption stops the run at a checkpoint with no adapter and no
 * evaluation.
 */
@org.junit.jupiter.api.Timeout(value = 10, unit = java.util.concurrent.TimeUnit.MINUTES)
class CheckpointPreemptionTest {
    static final int LONG_RUN = 150; // ~35 ms a step here: the child is still training when it gets SIGTERM
    static final Pattern PREEMPTED = Pattern.compile("preempted at step (\\d+): checkpoint (\\S+); resume with run.resume-from = latest");

    @TempDir
    Path dir;

    /** The tiny decoder run, long, with no checkpoint but the preemption's and the final one. */
    private List<String> settings(String name) throws IOException {
        List<String> s = new ArrayList<>(TinyRuns.settings("llama-lora", dir.resolve("runs"), name));
        s.addAll(List.of("train.steps=" + LONG_RUN, "checkpoint.every=0", "checkpoint.every-seconds=0"));
        return s;
    }

    @Test
    void sigtermCheckpointsAtTheNextStepExitsZeroAndTheResumedRunEqualsTheUninterruptedOne() throws Exception {
        Path runDir = dir.resolve("runs/preempted");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
                "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED",
                "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), "dev.moelora.cluster.Main", "train"));
        for (String s : settings("preempted")) {
            cmd.add("--set");
            cmd.add(s);
        }
        Path log = dir.resolve("child.log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        Process child = pb.start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (TinyRuns.lines(runDir.resolve("metrics.jsonl")).size() < 3) {
                if (!child.isAlive()) fail("the child exited with " + child.exitValue() + " before its third step:\n" + Files.readString(log));
                if (System.nanoTime() > deadline) fail("the child did not reach step 3 within 90 s:\n" + Files.readString(log));
                Thread.sleep(10);
            }
            child.destroy(); // SIGTERM
            if (!child.waitFor(60, TimeUnit.SECONDS)) fail("the child did not exit within 60 s of SIGTERM:\n" + Files.readString(log));
        } finally {
            child.destroyForcibly();
        }
        String printed = Files.readString(log);
        assertEquals(0, child.exitValue(), printed);
        Matcher m = PREEMPTED.matcher(printed);
        assertTrue(m.find(), printed);
        int step = Integer.parseInt(m.group(1));
        assertTrue(step >= 3 && step < LONG_RUN, "preempted mid-run: " + printed);
        Path checkpoints = runDir.resolve("checkpoints");
        assertEquals(checkpoints.resolve(String.format("step-%06d", step)).toString(), m.group(2));
        assertEquals(String.format("step-%06d", step), Files.readString(checkpoints.resolve("latest")).trim());
        assertEquals(step, TinyRuns.lines(runDir.resolve("metrics.jsonl")).size(), "every step up to the checkpoint recorded, no later one");
        assertFalse(Files.exists(runDir.resolve("adapter")), "a preempted run writes no adapter");

        List<String> resume = new ArrayList<>(settings("preempted"));
        resume.add("run.resume-from=latest");
        TinyRuns.Run resumed = TinyRuns.run("llama-lora", resume, Preemption::never);
        assertTrue(resumed.log().contains("at step " + step), resumed.log());
        TinyRuns.Run straight = TinyRuns.run("llama-lora", settings("straight"), Preemption::never);
        assertEquals(TinyRuns.metrics(straight.runDir()), TinyRuns.metrics(resumed.runDir()));
        TinyRuns.assertSameAdapter(straight.runDir(), resumed.runDir());
    }

    @Test
    void aRequestedPreemptionStopsAtACheckpointWithNoAdapterAndNoEvaluation() throws IOException {
        List<String> s = TinyRuns.settings("llama-lora", dir.resolve("runs"), "stopped");
        Path stopped = dir.resolve("runs/stopped"), metrics = stopped.resolve("metrics.jsonl");
        TinyRuns.Run r = TinyRuns.run("llama-lora", s, () -> Preemption.when(() -> TinyRuns.lines(metrics).size() >= 3));
        Path three = stopped.resolve("checkpoints/step-000003");
        assertTrue(r.log().contains("preempted at step 3: checkpoint " + three + "; resume with run.resume-from = latest"), r.log());
        assertTrue(Files.isRegularFile(three.resolve(CheckpointStore.MANIFEST)));
        assertFalse(Files.exists(stopped.resolve("adapter")));
        assertFalse(Files.exists(stopped.resolve("eval.json")));
        assertTrue(TinyRuns.lines(stopped.resolve("events.jsonl")).stream().anyMatch(l -> l.contains("\"preempted\"")));
    }
}
