package dev.moelora.cluster.observe;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.moelora.RoutingStats;
import dev.moelora.model.train.Trainer;
import java.util.ArrayList;
import java.util.List;

/**
 * The record lines of docs/records.md built from what the trainers report: one place that decides
 * field names, so the single-process and expert-parallel runs write the same schema.
 */
public final class Records {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Records() {}

    /** A metrics line: step, steps, loss, task_loss, aux_loss, lr, grad_norm, tokens, seconds, tokens_per_s. */
    public static ObjectNode metrics(Trainer.StepMetrics m) {
        ObjectNode line = JSON.createObjectNode();
        line.put("step", m.step());
        line.put("steps", m.steps());
        line.put("loss", m.loss());
        line.put("task_loss", m.taskLoss());
        line.put("aux_loss", m.auxLoss());
        line.put("lr", m.lr());
        line.put("grad_norm", m.gradNorm());
        line.put("tokens", m.tokens());
        line.put("seconds", m.seconds());
        line.put("tokens_per_s", m.tokens() / m.seconds());
        return line;
    }

    /**
     * The routing lines of one step, one per adapted module in forward order, from the statistics
     * of the step's last micro-batch: routed tokens, gate entropy, dropped tokens, the balance and
     * contrastive losses (unweighted), the cosine between experts' mean outputs.
     */
    public static List<ObjectNode> routing(int step, List<RoutingStats> modules) {
        List<ObjectNode> out = new ArrayList<>();
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
            out.add(line);
        }
        return out;
    }

    /** An events line (docs/records.md): time, event, step; the caller adds the fields its event has (checkpoint, reason, seconds, node). */
    public static ObjectNode event(String event, long step) {
        ObjectNode line = JSON.createObjectNode();
        line.put("time", java.time.Instant.now().toString());
        line.put("event", event);
        line.put("step", step);
        return line;
    }
}
