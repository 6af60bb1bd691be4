package dev.moelora.cluster.observe;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.moelora.RoutingStats;
import dev.moelora.model.train.Trainer;
import dev.moelora.proto.control.DeviceStats;
import dev.moelora.proto.control.ModuleRouting;
import dev.moelora.proto.control.NodeStats;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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

    private static final Pattern LAYER = Pattern.compile("(.*?\\blayers?\\.)(\\d+)\\.(.*)");

    /**
     * The routing lines of one step, one per adapted module in forward order, from the statistics
     * of the step's last micro-batch (docs/records.md): tokens, routed tokens, gate mass and mean
     * gate probability, gate entropy, effective experts, dropped tokens, the balance and
     * contrastive losses (unweighted), the cosine between experts' mean outputs.
     */
    public static List<ObjectNode> routing(int step, List<RoutingStats> modules) {
        List<ObjectNode> out = new ArrayList<>();
        for (RoutingStats s : modules) {
            ObjectNode line = JSON.createObjectNode();
            line.put("step", step);
            line.put("module", s.module());
            Matcher m = LAYER.matcher(s.module());
            line.put("layer", m.matches() ? Integer.parseInt(m.group(2)) : -1);
            line.put("kind", m.matches() ? m.group(3) : s.module());
            line.put("tokens", s.tokens());
            ArrayNode routed = line.putArray("routed_tokens");
            for (long r : s.routedTokens()) routed.add(r);
            ArrayNode mass = line.putArray("gate_mass");
            for (double g : s.gateMass()) mass.add(g * s.tokens());
            ArrayNode mean = line.putArray("mean_gate_prob");
            for (double g : s.gateMass()) mean.add(g);
            line.put("gate_entropy", s.gateEntropy());
            if (s.tokens() > 0) line.put("effective_experts", effectiveExperts(s.routedTokens())); // absent: nothing was routed
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

    /** exp of the entropy of the shares of routed slots: E for a uniform spread, k when every token goes to the same k experts. */
    public static double effectiveExperts(long[] routed) {
        double total = 0, h = 0;
        for (long r : routed) total += r;
        if (total == 0) return 0;
        for (long r : routed) if (r > 0) h -= r / total * Math.log(r / total);
        return Math.exp(h);
    }

    /** The model's statistics of a module as a router sent them (the wire keeps every field). */
    public static RoutingStats routingStats(ModuleRouting m) {
        int e = m.getRoutedTokensCount();
        long[] routed = new long[e];
        double[] mass = new double[e];
        double[][] cos = new double[e][e];
        for (int i = 0; i < e; i++) {
            routed[i] = m.getRoutedTokens(i);
            mass[i] = m.getGateMass(i);
            for (int j = 0; j < e; j++) cos[i][j] = m.getMeanOutputCosine(i * e + j);
        }
        return new RoutingStats(m.getModule(), m.getTokens(), routed, mass, m.getGateEntropy(), m.getBalanceLoss(), m.getContrastiveLoss(), cos,
                m.getDroppedTokens());
    }

    /** A nodes line (docs/records.md) for one node's part of a step. */
    public static ObjectNode node(int step, String node, NodeStats s) {
        ObjectNode line = JSON.createObjectNode();
        line.put("step", step);
        line.put("node", node);
        line.put("role", s.getRole());
        ArrayNode devices = line.putArray("devices");
        for (DeviceStats d : s.getDevicesList()) {
            ObjectNode o = devices.addObject();
            o.put("device", d.getDevice());
            ArrayNode experts = o.putArray("experts");
            d.getExpertsList().forEach(experts::add);
            o.put("compute_s", d.getComputeS());
        }
        line.put("compute_s", s.getComputeS());
        line.put("wait_s", s.getWaitS());
        line.put("transfer_s", s.getTransferS());
        line.put("bytes_sent", s.getBytesSent());
        line.put("bytes_received", s.getBytesReceived());
        line.put("frames_sent", s.getFramesSent());
        line.put("frames_received", s.getFramesReceived());
        ObjectNode dropped = line.putObject("frames_dropped");
        new java.util.TreeMap<>(s.getFramesDroppedMap()).forEach(dropped::put);
        return line;
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
