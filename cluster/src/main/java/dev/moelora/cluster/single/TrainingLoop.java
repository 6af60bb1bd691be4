package dev.moelora.cluster.single;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.checkpoint.CheckpointSchedule;
import dev.moelora.cluster.checkpoint.CheckpointStore;
import dev.moelora.cluster.checkpoint.FinalAdapter;
import dev.moelora.cluster.checkpoint.RunCheckpoints;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.Preemption;
import dev.moelora.cluster.job.Progress;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.observe.JsonlRecorder;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.cluster.observe.RunRecorder;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.checkpoint.FileDigest;
import dev.moelora.model.checkpoint.StateFile;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.train.Trainer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The part of a single-process job around its trainer, the same for encoder tasks and decoder
 * instructions: continuing from run.resume-from (state, cursor, and the run directory's records
 * put back to the checkpoint's step), the steps with metrics.jsonl, routing.jsonl (MoELoRA) and
 * the progress line, checkpoints on the schedule and on preemption, the final checkpoint and the
 * adapter made from it. It never decides what a step computes.
 */
final class TrainingLoop {
    /** What the loop needs from a job's trainer. */
    interface Steps {
        int step();

        void run(int until, Trainer.Listener listener);

        AdamW optimizer();

        List<Parameter> parameters();

        /** The data cursor, saved in checkpoints. */
        int epoch();

        int position();

        /** Continues at {@code step} with the data cursor a checkpoint recorded. */
        void resume(int step, int epoch, int position);
    }

    /**
     * Every step's loss this process ran, the training tokens and seconds summed over them, and
     * whether the run stopped early on preemption (then there is no adapter and no evaluation).
     */
    record Totals(List<Double> losses, long tokens, double seconds, boolean preempted) {
        double tokensPerSecond() {
            return seconds > 0 ? tokens / seconds : 0;
        }
    }

    private TrainingLoop() {}

    /**
     * Trains to train.steps: resumes as run.resume-from says, checkpoints as checkpoint.* says and
     * when {@code preemption} is requested (then it stops), and at the end writes the final
     * checkpoint and, from it, the adapter into {@code adapterDir}.
     *
     * @param preemption made when the step loop begins and closed when it ends
     */
    static Totals run(RunConfig config, Path runDir, Steps steps, Adapters adapters, ObjectNode adapterJson, Path adapterDir,
                      PrintStream out, boolean terminal, Supplier<Preemption> preemption) throws IOException {
        int total = config.integer("train.steps");
        String runName = runDir.getFileName().toString();
        List<String> unusable = new ArrayList<>();
        CheckpointStore store = RunCheckpoints.store(config, runDir, message -> {
            out.println("  checkpoint : " + message);
            unusable.add(message);
        });
        Optional<CheckpointStore.Loaded> from = RunCheckpoints.resumeFrom(config, store, m -> out.println("  resume     : " + m));
        if (from.isPresent()) restore(from.get(), steps, out);

        CheckpointSchedule schedule = CheckpointSchedule.of(config);
        List<Double> losses = new ArrayList<>();
        long[] tokens = {0};
        double[] seconds = {0};
        Progress progress = new Progress(out, terminal, steps.step());
        MoeLoraAdapters moe = adapters instanceof MoeLoraAdapters m ? m : null;
        try (RunRecorder records = RunDirectory.recorders(runDir); Preemption stop = preemption.get()) {
            records.rewind(steps.step()); // a resumed run's records stop at its checkpoint; TensorBoard forgets later steps
            for (String m : unusable) records.record(RecordStream.EVENTS, Records.event("checkpoint-invalid", steps.step()).put("reason", m));
            from.ifPresent(c -> records.record(RecordStream.EVENTS, Records.event("resumed", c.step()).put("checkpoint", c.dir().toString())));
            Trainer.Listener listener = m -> {
                losses.add(m.loss());
                tokens[0] += m.tokens();
                seconds[0] += m.seconds();
                records.record(RecordStream.METRICS, Records.metrics(m));
                if (moe != null) for (var line : Records.routing(m.step(), moe.stats())) records.record(RecordStream.ROUTING, line);
                progress.onStep(m);
            };
            long last = System.nanoTime();
            while (steps.step() < total) {
                if (stop.requested()) {
                    preempted(checkpoint(config, runName, store, steps, records), stop, records, out);
                    return new Totals(losses, tokens[0], seconds[0], true);
                }
                steps.run(steps.step() + 1, listener);
                if (steps.step() < total && schedule.due(steps.step(), Duration.ofNanos(System.nanoTime() - last))) {
                    checkpoint(config, runName, store, steps, records);
                    last = System.nanoTime();
                }
            }
            CheckpointStore.Loaded end = checkpoint(config, runName, store, steps, records);
            FinalAdapter.write(end, adapterDir, adapterJson);
            if (stop.requested()) {
                preempted(end, stop, records, out);
                return new Totals(losses, tokens[0], seconds[0], true);
            }
        }
        return new Totals(losses, tokens[0], seconds[0], false);
    }

    /** Restores parameters, AdamW moments and step count, trainer step and data cursor from a verified checkpoint. */
    private static void restore(CheckpointStore.Loaded checkpoint, Steps steps, PrintStream out) throws IOException {
        long optimizerSteps = StateFile.readAll(checkpoint.dir(), checkpoint.files(), steps.parameters(), steps.optimizer());
        if (optimizerSteps != checkpoint.manifest().getOptimizerSteps()) {
            throw new IOException(checkpoint.dir() + ": state files at optimizer step " + optimizerSteps + ", the manifest says "
                    + checkpoint.manifest().getOptimizerSteps());
        }
        var cursor = checkpoint.manifest().getCursor();
        steps.resume(Math.toIntExact(checkpoint.step()), cursor.getEpoch(), cursor.getPosition());
        out.printf(Locale.ROOT, "  resumed    : %s at step %d%n", checkpoint.dir(), checkpoint.step());
    }

    /** The checkpoint of the current step: the one already there when it verifies (never rewritten), else a new one. */
    private static CheckpointStore.Loaded checkpoint(RunConfig config, String runName, CheckpointStore store, Steps steps,
                                                     RunRecorder records) throws IOException {
        long t0 = System.nanoTime();
        int step = steps.step();
        Optional<CheckpointStore.Loaded> existing = store.reuse(step);
        if (existing.isPresent()) return existing.get();
        Path dir = store.begin(step);
        List<FileDigest> files = StateFile.writeAll(dir, steps.parameters(), steps.optimizer());
        CheckpointStore.Loaded c = store.commit(RunCheckpoints.manifest(config, runName, step, steps.epoch(), steps.position(), files,
                steps.optimizer().steps(), List.of()));
        records.record(RecordStream.EVENTS, Records.event("checkpoint", step).put("checkpoint", c.dir().toString())
                .put("seconds", (System.nanoTime() - t0) / 1e9));
        return c;
    }

    private static void preempted(CheckpointStore.Loaded c, Preemption stop, RunRecorder records, PrintStream out) {
        records.record(RecordStream.EVENTS, Records.event("preempted", c.step()).put("checkpoint", c.dir().toString()));
        out.printf(Locale.ROOT, "%npreempted at step %d: checkpoint %s; resume with run.resume-from = latest%n", c.step(), c.dir());
        out.flush();
        stop.done();
    }
}
