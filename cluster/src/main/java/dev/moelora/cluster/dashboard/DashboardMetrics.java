package dev.moelora.cluster.dashboard;

import dev.moelora.cluster.dashboard.RunRecords.NodeStep;
import dev.moelora.cluster.dashboard.RunRecords.Routing;
import dev.moelora.cluster.dashboard.RunRecords.Step;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiConsumer;
import java.util.function.ToDoubleFunction;

/**
 * The records as Prometheus metrics, computed from the workspace at each scrape (a rewound file
 * simply shows lower counters, as after a restart). Its own registry, never the default one, so
 * two dashboards in one JVM do not meet. Gauges hold the newest step's values, counters sum over
 * the steps recorded. Labels: run, module, expert, node (and health, phase, cause, task, file).
 */
final class DashboardMetrics {
    static final List<String> HEALTHS = List.of("up", "unreachable", "recovering", "lost");

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();
    private final Workspace workspace;

    DashboardMetrics(Workspace workspace) {
        this.workspace = workspace;
        stepGauge("moelora_step", "The last optimizer step finished", Step::step);
        stepGauge("moelora_train_steps", "Steps the run is set to train (train.steps)", Step::steps);
        stepGauge("moelora_loss", "What was minimised at the last step: task loss plus weighted auxiliary losses", Step::loss);
        stepGauge("moelora_task_loss", "Task loss of the last step", Step::taskLoss);
        stepGauge("moelora_aux_loss", "Weighted balance plus contrastive loss of the last step (0 for other families)", Step::auxLoss);
        stepGauge("moelora_learning_rate", "Learning rate of the last step", Step::lr);
        stepGauge("moelora_grad_norm", "Global gradient norm of the last step, before clipping", Step::gradNorm);
        stepGauge("moelora_tokens_per_second", "Real tokens per second of the last step", Step::tokensPerSecond);
        stepGauge("moelora_step_seconds", "Wall time of the last step", Step::seconds);

        GaugeWithCallback.builder().name("moelora_routed_tokens").help("Real tokens routed to each expert of a module at the newest routing step")
                .labelNames("run", "module", "expert").callback(cb -> routing((run, r) -> {
                    for (int e = 0; e < r.routed().length; e++) cb.call(r.routed()[e], run, r.module(), Integer.toString(e));
                })).register(registry);
        moduleGauge("moelora_load_imbalance_ratio", "max / mean of a module's routed tokens at the newest routing step (1 = even)", Routing::imbalance);
        moduleGauge("moelora_load_cv_ratio", "Coefficient of variation (std / mean) of a module's routed tokens at the newest routing step", Routing::cv);
        moduleGauge("moelora_gate_entropy_nats", "Mean gate entropy of a module's tokens at the newest routing step", Routing::gateEntropy);
        moduleGauge("moelora_effective_experts", "exp of the entropy of a module's routed-token shares at the newest routing step", Routing::effectiveExperts);
        moduleGauge("moelora_dropped_tokens", "Tokens no expert of a module took at the newest routing step", r -> r.dropped());

        nodeCounter("moelora_node_sent_bytes", "Tensor-frame bytes a node sent, over the steps recorded", NodeStep::bytesSent);
        nodeCounter("moelora_node_received_bytes", "Tensor-frame bytes a node received, over the steps recorded", NodeStep::bytesReceived);
        nodeCounter("moelora_node_sent_frames", "Tensor frames a node sent, over the steps recorded", NodeStep::framesSent);
        nodeCounter("moelora_node_received_frames", "Tensor frames a node received, over the steps recorded", NodeStep::framesReceived);
        CounterWithCallback.builder().name("moelora_node_dropped_frames").help("Tensor frames a node dropped, by cause, over the steps recorded")
                .labelNames("run", "node", "cause").callback(cb -> eachRun(run -> {
                    Map<List<String>, Long> sums = new TreeMap<>((a, b) -> (a.get(0) + '\0' + a.get(1)).compareTo(b.get(0) + '\0' + b.get(1)));
                    for (Map<String, NodeStep> atStep : run.nodes().values()) {
                        for (NodeStep n : atStep.values()) n.framesDropped().forEach((cause, k) -> sums.merge(List.of(n.node(), cause), k, Long::sum));
                    }
                    sums.forEach((key, k) -> cb.call(k, run.name(), key.get(0), key.get(1)));
                })).register(registry);
        GaugeWithCallback.builder().name("moelora_node_step_seconds").help("Seconds of the newest recorded step a node spent per phase (compute, wait, transfer)")
                .labelNames("run", "node", "phase").callback(cb -> eachRun(run -> {
                    if (run.nodes().isEmpty()) return;
                    for (NodeStep n : run.nodes().lastEntry().getValue().values()) {
                        cb.call(n.computeSeconds(), run.name(), n.node(), "compute");
                        cb.call(n.waitSeconds(), run.name(), n.node(), "wait");
                        cb.call(n.transferSeconds(), run.name(), n.node(), "transfer");
                    }
                })).register(registry);
        GaugeWithCallback.builder().name("moelora_node_health").help("1 for a node's current health in placement.json, 0 for the others")
                .labelNames("run", "node", "health").callback(cb -> eachRun(run -> {
                    if (run.placement() == null) return;
                    for (RunRecords.PlacedNode n : run.placement()) {
                        for (String h : HEALTHS) cb.call(n.health().equals(h) ? 1 : 0, run.name(), n.node(), h);
                        if (!HEALTHS.contains(n.health())) cb.call(1, run.name(), n.node(), n.health());
                    }
                })).register(registry);
        CounterWithCallback.builder().name("moelora_recoveries").help("Recoveries of the run (recovered events)")
                .labelNames("run").callback(cb -> eachRun(run -> cb.call(run.recoveries(), run.name()))).register(registry);
        GaugeWithCallback.builder().name("moelora_eval_accuracy_ratio").help("Accuracy per task from the run's eval.json")
                .labelNames("run", "task").callback(cb -> eachRun(run -> {
                    if (run.scores() != null) for (RunRecords.Score s : run.scores()) cb.call(s.accuracy(), run.name(), s.task());
                })).register(registry);
        CounterWithCallback.builder().name("moelora_dashboard_malformed_lines").help("Lines of a run's files the dashboard skipped as malformed")
                .labelNames("run", "file").callback(cb -> eachRun(run -> run.malformed().forEach((file, n) -> cb.call(n, run.name(), file)))).register(registry);
    }

    /** The scrape in the Prometheus text format (0.0.4). */
    String scrape() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writer.write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    private void eachRun(java.util.function.Consumer<RunRecords> f) {
        for (RunRecords run : workspace.runs()) {
            synchronized (run) {
                f.accept(run);
            }
        }
    }

    private void stepGauge(String name, String help, ToDoubleFunction<Step> value) {
        GaugeWithCallback.builder().name(name).help(help).labelNames("run").callback(cb -> eachRun(run -> {
            if (run.steps().isEmpty()) return;
            double v = value.applyAsDouble(run.steps().lastEntry().getValue());
            if (!Double.isNaN(v)) cb.call(v, run.name());
        })).register(registry);
    }

    /** Each module's newest routing line, with its run's name. */
    private void routing(BiConsumer<String, Routing> f) {
        eachRun(run -> {
            Map<String, Routing> newest = new TreeMap<>();
            for (Map<String, Routing> atStep : run.routing().values()) newest.putAll(atStep);
            newest.values().forEach(r -> f.accept(run.name(), r));
        });
    }

    private void moduleGauge(String name, String help, ToDoubleFunction<Routing> value) {
        GaugeWithCallback.builder().name(name).help(help).labelNames("run", "module").callback(cb -> routing((run, r) -> {
            double v = value.applyAsDouble(r);
            if (!Double.isNaN(v)) cb.call(v, run, r.module());
        })).register(registry);
    }

    private void nodeCounter(String name, String help, ToDoubleFunction<NodeStep> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames("run", "node").callback(cb -> eachRun(run -> {
            Map<String, Double> sums = new TreeMap<>();
            for (Map<String, NodeStep> atStep : run.nodes().values()) {
                for (NodeStep n : atStep.values()) sums.merge(n.node(), value.applyAsDouble(n), Double::sum);
            }
            sums.forEach((node, v) -> cb.call(v, run.name(), node));
        })).register(registry);
    }
}
