package dev.moelora.cluster.checkpoint;

import dev.moelora.cluster.config.RunConfig;
import java.time.Duration;

/**
 * When a run writes a checkpoint: at every step boundary that is a multiple of checkpoint.every,
 * or once checkpoint.every-seconds have passed since the last one, whichever comes first (0 turns
 * either off). Preemption and the end of the run write one regardless; that is the loop's to decide.
 */
public record CheckpointSchedule(int every, Duration interval) {
    public CheckpointSchedule {
        if (every < 0) throw new IllegalArgumentException("checkpoint.every must be >= 0 (0: off), got " + every);
        if (interval.isNegative()) throw new IllegalArgumentException("checkpoint.every-seconds must be >= 0 (0: off), got " + interval);
    }

    public static CheckpointSchedule of(RunConfig config) {
        return new CheckpointSchedule(config.integer("checkpoint.every"), Duration.ofSeconds(config.longValue("checkpoint.every-seconds")));
    }

    /** Whether the boundary after {@code step} steps gets a checkpoint, {@code sinceLast} after the last one (or the run's start). */
    public boolean due(long step, Duration sinceLast) {
        return (every > 0 && step % every == 0) || (!interval.isZero() && sinceLast.compareTo(interval) >= 0);
    }
}
