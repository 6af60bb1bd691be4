package dev.moelora.cluster.observe;

/**
 * The record streams a run writes, one JSON object per line, each into its own file of the run
 * directory. Their fields are listed in docs/records.md; the JSONL files, TensorBoard, Prometheus
 * and the dashboard all read the same objects.
 */
public enum RecordStream {
    /** One line per optimizer step: losses, learning rate, gradient norm, tokens, seconds. */
    METRICS("metrics.jsonl"),
    /** One line per (step, adapted module) of a MoELoRA run: how the router spread the tokens. */
    ROUTING("routing.jsonl"),
    /** One line per (step, node) of an expert-parallel run: step-time split, traffic, dropped frames. */
    NODES("nodes.jsonl"),
    /** One line per event of a run's life: start, placement, failures, recoveries, checkpoints, end. */
    EVENTS("events.jsonl");

    private final String file;

    RecordStream(String file) {
        this.file = file;
    }

    public String file() {
        return file;
    }
}
