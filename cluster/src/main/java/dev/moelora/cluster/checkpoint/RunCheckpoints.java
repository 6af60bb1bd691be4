package dev.moelora.cluster.checkpoint;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.checkpoint.FileDigest;
import dev.moelora.proto.checkpoint.CheckpointManifest;
import dev.moelora.proto.checkpoint.CheckpointManifest.RandomStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * What a run's configuration says about its checkpoints, the same for the single-process jobs and
 * the expert-parallel coordinator: where they live (checkpoint.dir, keep-last), which checkpoint
 * a run continues from (run.resume-from) and whether it may (the settings that decide what the
 * adapter means and every random stream must be the checkpoint's), and the manifest of a step.
 * It reads no tensors.
 */
public final class RunCheckpoints {
    /** What a resumed run may change; the rest must equal the checkpoint's settings. */
    static final String MAY_CHANGE = "run.*, train.steps, checkpoint.*, runtime.*, cluster.*, recovery.* and dashboard.*";

    private RunCheckpoints() {}

    /** {@code checkpoint.dir}, or {@code <run dir>/checkpoints} when it is empty. */
    public static Path dir(RunConfig config, Path runDir) {
        String dir = config.string("checkpoint.dir");
        return dir.isEmpty() ? runDir.resolve("checkpoints") : Path.of(dir);
    }

    /** The run's checkpoint store; {@code log} hears of every unusable checkpoint. */
    public static CheckpointStore store(RunConfig config, Path runDir, Consumer<String> log) {
        return new CheckpointStore(dir(config, runDir), config.integer("checkpoint.keep-last"), log);
    }

    /**
     * Every random stream of a run, as a function of train.seed (and data.generated.seed): none of
     * them carries state from one step to the next, so the seed and the rule restore each.
     */
    public static List<RandomStream> streams(RunConfig config) {
        long seed = config.longValue("train.seed");
        List<RandomStream> out = new ArrayList<>();
        out.add(stream("micro-batch", seed, "Trainer.microBatchSeed(seed, step, micro) = seed * 1000003 + step + micro * 0x9E3779B97F4A7C15"
                + " for micro-batch micro of 0-based step step; adapted module i draws its dropout masks and contrastive feature samples from"
                + " Adapters.moduleSeed(that, i) = that * 8191 + i, reseeded at every micro-batch"));
        out.add(stream("sampler", seed, "the training examples of epoch e in the order of a Fisher-Yates shuffle by"
                + " SplittableRandom(seed * 1000003 + e), for instructions then sorted longest first in windows of 50 micro-batches when"
                + " data.instructions.group-by-length; read on from the cursor (epoch, position)"));
        out.add(stream("adapter-init", seed, "initial adapter tensors drawn from SplittableRandom(seed) in module forward order; the frozen"
                + " random tied matrices of Tied-LoRA vera and tl1-tl4 are drawn again from it on resume, not saved"));
        if (!config.string("model.name").equals("llama")) {
            out.add(stream("head-init", seed + 1, "initial task heads drawn from SplittableRandom(seed)"));
        }
        if (config.string("data.source").equals("generated")) {
            out.add(stream("generated-data", config.longValue("data.generated.seed"), "the generated task suite drawn from this seed"));
        }
        return out;
    }

    private static RandomStream stream(String name, long seed, String rule) {
        return RandomStream.newBuilder().setName(name).setSeed(seed).setRule(rule).build();
    }

    /**
     * The manifest of the checkpoint at {@code step}: where the run stands (cursor, optimizer steps),
     * its streams, its configuration and hash, the state files with their digests, and where the
     * experts were (informative; empty for a single-process run).
     */
    public static CheckpointManifest manifest(RunConfig config, String runName, long step, int epoch, int position, List<FileDigest> files,
                                              long optimizerSteps, List<CheckpointManifest.ExpertPlacement> placement) {
        CheckpointManifest.Builder b = CheckpointManifest.newBuilder()
                .setFormatVersion(CheckpointStore.FORMAT_VERSION)
                .setRunName(runName)
                .setStep(step)
                .setConfigHash(config.hash())
                .setConfig(config.render())
                .setCursor(CheckpointManifest.DataCursor.newBuilder().setEpoch(epoch).setPosition(position))
                .addAllStreams(streams(config))
                .addAllPlacement(placement)
                .setOptimizerSteps(optimizerSteps)
                .setCreatedUnixMs(System.currentTimeMillis());
        for (FileDigest f : files) {
            b.addFiles(CheckpointManifest.CheckpointFile.newBuilder().setName(f.name()).setSize(f.size()).setSha256(f.sha256()));
        }
        return b.build();
    }

    /**
     * The checkpoint {@code run.resume-from} names: empty for "" (a fresh run, refused when the
     * checkpoint directory already holds checkpoints) or for "latest" when no checkpoint verifies
     * (said on {@code log}); the newest valid one for "latest"; the given step directory otherwise.
     * A checkpoint trained with other settings is refused naming every key that differs.
     */
    public static Optional<CheckpointStore.Loaded> resumeFrom(RunConfig config, CheckpointStore store, Consumer<String> log) throws IOException {
        String from = config.string("run.resume-from");
        Optional<CheckpointStore.Loaded> found;
        if (from.isEmpty()) {
            if (!store.steps().isEmpty()) {
                throw new IllegalArgumentException(store.dir() + " already holds checkpoints (steps " + store.steps() + "); continue that run with"
                        + " run.resume-from = latest, or give this one another run.name");
            }
            return Optional.empty();
        } else if (from.equals("latest")) {
            if (config.string("run.name").isEmpty()) {
                throw new IllegalArgumentException("run.resume-from = latest continues the run named by run.name; set run.name");
            }
            found = store.newestValid();
            if (found.isEmpty()) log.accept("no valid checkpoint in " + store.dir() + "; starting at step 0");
        } else {
            Path dir = Path.of(from);
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException("run.resume-from must be 'latest' or a checkpoint step directory (<checkpoint dir>/step-NNNNNN);"
                        + " '" + from + "' is neither");
            }
            if (!Files.isRegularFile(dir.resolve(CheckpointStore.MANIFEST)) && !dir.getFileName().toString().startsWith("step-")) {
                throw new IllegalArgumentException("run.resume-from " + dir + " is not a checkpoint step directory (no " + CheckpointStore.MANIFEST
                        + "); a run's checkpoints are <checkpoint dir>/step-NNNNNN, or say 'latest'");
            }
            found = Optional.of(CheckpointStore.open(dir));
        }
        if (found.isPresent()) requireCompatible(config, found.get());
        return found;
    }

    /**
     * Refuses a checkpoint whose settings differ from this run's in anything but {@link #MAY_CHANGE},
     * naming every key that differs, or whose random streams are not this run's.
     */
    public static void requireCompatible(RunConfig config, CheckpointStore.Loaded checkpoint) {
        CheckpointManifest m = checkpoint.manifest();
        RunConfig saved;
        try {
            saved = RunConfig.parse(m.getConfig());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("checkpoint " + checkpoint.dir() + ": its configuration does not load in this build: " + e.getMessage(), e);
        }
        List<String> differ = config.differences(saved);
        if (!differ.isEmpty()) {
            throw new IllegalArgumentException("checkpoint " + checkpoint.dir() + " was trained with other settings: " + String.join("; ", differ)
                    + " (a resumed run may change only " + MAY_CHANGE + ")");
        }
        List<RandomStream> mine = streams(config);
        if (!mine.equals(m.getStreamsList())) {
            throw new IllegalArgumentException("checkpoint " + checkpoint.dir() + " continues other random streams than this build draws: "
                    + describe(m.getStreamsList()) + " vs " + describe(mine));
        }
    }

    private static String describe(List<RandomStream> streams) {
        return streams.stream().map(s -> s.getName() + " (seed " + s.getSeed() + ": " + s.getRule() + ")").toList().toString();
    }
}
