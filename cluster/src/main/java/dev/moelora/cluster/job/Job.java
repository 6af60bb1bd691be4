package dev.moelora.cluster.job;

import dev.moelora.cluster.config.RunConfig;
import java.io.IOException;
import java.io.PrintStream;

/**
 * A training run from its configuration to its result: the encoder and instruction jobs
 * (single-process) and the expert-parallel job are the implementations; the command line and the
 * experiment coordinator choose which one runs. A job prints its progress to {@code out} and writes
 * everything else under its run directory.
 */
@FunctionalInterface
public interface Job {
    /**
     * @param terminal whether {@code out} is a terminal (the progress line redraws itself) or a log
     */
    JobResult run(RunConfig config, PrintStream out, boolean terminal) throws IOException;
}
