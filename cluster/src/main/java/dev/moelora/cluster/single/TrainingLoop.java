package dev.moelora.cluster.single;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.Progress;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.observe.JsonlRecorder;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.cluster.observe.Records;
import dev.moelora.cluster.observe.RunRecorder;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.train.AdapterStore;
import dev.moelora.model.train.Trainer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The part of a single-process job around its trainer, the same for encoder tasks and decoder
 * instructions: resuming from run.resume-from, running to the end with a save every
 * train.save-every steps, and per step metrics.jsonl, routing.jsonl (MoELoRA), the progress line
 * and the totals. It never decides what a step computes.
 */
final class TrainingLoop {
    /** What the loop needs from a job's trainer. */
    interface Steps {
        int step();

        void run(int until, Trainer.Listener listener);

        AdamW optimizer();

        List<Parameter> parameters();

        /** The data cursor, saved with the adapter. */
        int epoch();

        int position();

        /** Continues at {@code step} with the data cursor a saved run left. */
        void resume(int step, int epoch, int position);
    }

    /** Every step's loss, and the training tokens and seconds summed over the steps. */
    record Totals(List<Double> losses, long tokens, double seconds) {
        double tokensPerSecond() {
            return seconds > 0 ? tokens / seconds : 0;
        }
    }

    private TrainingLoop() {}

    /**
     * Loads run.resume-from when set: weights, and optimizer and cursor when the directory has
     * them. A directory saved with settings that change what the adapter means is refused before
     * anything is loaded, naming every key that differs.
     */
    static void resume(RunConfig config, Steps steps, PrintStream out) throws IOException {
        String resume = config.string("run.resume-from");
        if (resume.isEmpty()) return;
        Path dir = Path.of(resume);
        RunConfig saved = savedConfig(dir);
        if (saved != null) {
            List<String> differ = config.differences(saved);
            if (!differ.isEmpty()) {
                throw new IllegalArgumentException("run.resume-from " + dir + " was trained with other settings: " + String.join("; ", differ)
                        + " (a resumed run keeps every setting but run.*, train.steps, train.save-every, runtime.* and cluster.*)");
            }
        }
        AdapterStore.State state = AdapterStore.load(dir, steps.parameters(), steps.optimizer());
        if (state == null) {
            out.printf(Locale.ROOT, "  loaded     : adapter weights from %s (no optimizer state; starting at step 0)%n", resume);
            return;
        }
        if (saved == null && !state.configHash().equals(config.hash())) {
            throw new IllegalArgumentException("run.resume-from " + dir + " was trained with other settings (config hash "
                    + state.configHash() + ", this run " + config.hash() + "); it has no " + RunDirectory.CONFIG + " to say which keys differ");
        }
        steps.resume(state.step(), state.epoch(), state.position());
        out.printf(Locale.ROOT, "  resumed    : %s at step %d%n", resume, state.step());
    }

    /** The configuration a saved adapter was trained with: its own config.conf, or its run directory's. */
    private static RunConfig savedConfig(Path adapterDir) throws IOException {
        for (Path f : new Path[] {adapterDir.resolve(RunDirectory.CONFIG),
                adapterDir.toAbsolutePath().getParent() == null ? null : adapterDir.toAbsolutePath().getParent().resolve(RunDirectory.CONFIG)}) {
            if (f == null || !Files.isRegularFile(f)) continue;
            try {
                return RunConfig.parse(Files.readString(f));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(f + ": the saved run's configuration: " + e.getMessage(), e);
            }
        }
        return null;
    }

    /** Trains to train.steps, saving the adapter to {@code adapterDir} every train.save-every steps and at the end. */
    static Totals run(RunConfig config, Path runDir, Steps steps, Adapters adapters, ObjectNode adapterJson, Path adapterDir,
                      PrintStream out, boolean terminal) throws IOException {
        int total = config.integer("train.steps"), saveEvery = config.integer("train.save-every");
        List<Double> losses = new ArrayList<>();
        long[] tokens = {0};
        double[] seconds = {0};
        Progress progress = new Progress(out, terminal, steps.step());
        MoeLoraAdapters moe = adapters instanceof MoeLoraAdapters m ? m : null;
        try (RunRecorder records = new JsonlRecorder(runDir)) {
            while (steps.step() < total) {
                int until = saveEvery > 0 ? Math.min(total, (steps.step() / saveEvery + 1) * saveEvery) : total;
                steps.run(until, m -> {
                    losses.add(m.loss());
                    tokens[0] += m.tokens();
                    seconds[0] += m.seconds();
                    records.record(RecordStream.METRICS, Records.metrics(m));
                    if (moe != null) for (var line : Records.routing(m.step(), moe.stats())) records.record(RecordStream.ROUTING, line);
                    progress.onStep(m);
                });
                AdapterStore.save(adapterDir, steps.parameters(), adapterJson, steps.optimizer(),
                        new AdapterStore.State(steps.step(), steps.epoch(), steps.position(), config.hash()));
                Files.writeString(adapterDir.resolve(RunDirectory.CONFIG), config.render());
            }
        }
        return new Totals(losses, tokens[0], seconds[0]);
    }
}
