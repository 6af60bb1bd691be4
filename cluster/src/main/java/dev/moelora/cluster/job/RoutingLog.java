package dev.moelora.cluster.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.moelora.RoutingStats;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * A MoELoRA run's routing.jsonl: one JSON line per (step, adapted module) with the router's
 * statistics of the step's last micro-batch — tokens routed to each expert, gate mass, gate
 * entropy, dropped tokens, the balance and contrastive losses (unweighted) and the cosine between
 * experts' mean outputs. Appends (a resumed run continues its file) and flushes every step. It
 * never reads back what it wrote.
 */
public final class RoutingLog implements AutoCloseable {
    public static final String FILE = "routing.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final BufferedWriter out;

    public RoutingLog(Path runDir) throws IOException {
        this.file = runDir.resolve(FILE);
        this.out = Files.newBufferedWriter(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    public void write(int step, List<RoutingStats> modules) {
        try {
            for (RoutingStats s : modules) {
                ObjectNode line = JSON.createObjectNode();
                line.put("step", step);
                line.put("module", s.module());
                ArrayNode routed = line.putArray("routed_tokens");
                for (long r : s.routedTokens()) routed.add(r);
                ArrayNode mass = line.putArray("gate_mass");
                for (double g : s.gateMass()) mass.add(g);
                line.put("gate_entropy", s.gateEntropy());
                line.put("dropped_tokens", s.droppedTokens());
                line.put("balance_loss", s.balanceLoss());
                line.put("contrastive_loss", s.contrastiveLoss());
                ArrayNode cos = line.putArray("mean_output_cosine");
                for (double[] row : s.meanOutputCosine()) {
                    ArrayNode r = cos.addArray();
                    for (double c : row) r.add(c);
                }
                out.write(JSON.writeValueAsString(line));
                out.newLine();
            }
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
