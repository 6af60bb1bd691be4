package dev.moelora.cluster.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.train.Trainer;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A run's metrics.jsonl: one JSON line per optimizer step, flushed as it is written, the same
 * for every runtime. It never reads back what it wrote.
 */
public final class MetricsLog implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final BufferedWriter out;

    /** Appends to {@code runDir/metrics.jsonl} (a resumed run continues its file). */
    public MetricsLog(Path runDir) throws IOException {
        this.file = runDir.resolve("metrics.jsonl");
        this.out = Files.newBufferedWriter(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    /** step, loss, task_loss, aux_loss, lr, grad_norm, tokens, seconds, tokens_per_s. */
    public void write(Trainer.StepMetrics m) {
        ObjectNode line = JSON.createObjectNode();
        line.put("step", m.step());
        line.put("loss", m.loss());
        line.put("task_loss", m.taskLoss());
        line.put("aux_loss", m.auxLoss());
        line.put("lr", m.lr());
        line.put("grad_norm", m.gradNorm());
        line.put("tokens", m.tokens());
        line.put("seconds", m.seconds());
        line.put("tokens_per_s", m.tokens() / m.seconds());
        try {
            out.write(JSON.writeValueAsString(line));
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
