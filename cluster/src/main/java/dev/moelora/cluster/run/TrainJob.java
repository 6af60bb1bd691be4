package dev.moelora.cluster.run;

import dev.moelora.model.optim.AdamW;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.data.Task;
import dev.moelora.model.data.TaskFormat;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.moelora.RoutingStats;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.task.TaskHeads;
import dev.moelora.model.task.TaskModel;
import dev.moelora.model.train.Evaluation;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;

/**
 * One encoder training run, end to end (a decoder's is {@link InstructionJob}): base model, tasks, adapter and heads, training with
 * progress and per-step JSONL metrics, periodic and final saves, and the evaluation table.
 * Everything it writes goes under the run directory.
 */
public final class TrainJob {
    /** What a finished run reports. */
    public record Result(Path runDir, String adapter, List<Evaluation.TaskScore> scores, long trainableParameters,
                         double tokensPerSecond, double trainSeconds, double wallSeconds, List<Double> losses) {}

    private static final ObjectMapper JSON = new ObjectMapper();

    private TrainJob() {}

    public static Result run(RunConfig config, PrintStream out, boolean terminal) throws IOException {
        String mode = config.string("runtime.mode");
        if (config.string("model.name").equals("llama")) {
            if (!mode.equals("single-process")) {
                throw new IllegalArgumentException("model.name = llama trains single-process only; runtime.mode = " + mode
                        + " runs the encoder's trunk in its routers");
            }
            return InstructionJob.run(config, out, terminal);
        }
        if (config.string("data.source").equals("instructions")) {
            throw new IllegalArgumentException("data.source = instructions trains a decoder: set model.name = llama and model.path");
        }
        if (!mode.equals("single-process")) {
            if (!config.string("adapter.type").equals("moelora")) {
                throw new IllegalArgumentException("runtime.mode = " + mode + " runs MoELoRA's experts in expert actors; adapter.type "
                        + config.string("adapter.type") + " has no experts and runs with runtime.mode = single-process");
            }
            if (!config.string("run.resume-from").isEmpty()) {
                throw new IllegalArgumentException("run.resume-from is not supported by the expert-parallel runtime yet (runtime.mode = "
                        + mode + "); resume with runtime.mode = single-process");
            }
            return dev.moelora.cluster.runtime.ExpertParallelJob.run(config, out, terminal);
        }
        long t0 = System.nanoTime();
        Path runDir = runDirectory(config);
        Files.createDirectories(runDir);
        Files.writeString(runDir.resolve("config.conf"), config.render());

        RunSetup setup = RunSetup.build(config, MoeLora.LOCAL);
        BaseModel base = setup.base();
        List<Task> tasks = setup.tasks();
        TrainConfig train = setup.train();
        Adapters adapters = setup.adapters();
        TaskHeads heads = setup.heads();
        TaskModel model = setup.model();
        long adapterParams = adapters.trainableParameters();
        long headParams = heads.parameters().stream().mapToLong(Parameter::size).sum();

        out.printf(Locale.ROOT, "moelora train -> %s%n  base model : %s (frozen)%n", runDir, base.description());
        out.printf(Locale.ROOT, "  adapter    : %s%n", adapters.describe());
        out.printf(Locale.ROOT, "  trainable  : %,d parameters (adapter %,d + heads %,d)%n", adapterParams + headParams, adapterParams, headParams);
        for (Task t : tasks) {
            out.printf(Locale.ROOT, "  task       : %-14s %-15s train %,6d  test %,5d  chance %.3f%n", t.name(),
                    t.format() == TaskFormat.MULTIPLE_CHOICE ? "multiple-choice" : "classification", t.train().size(), t.test().size(), t.chance());
        }
        out.printf(Locale.ROOT, "  training   : %d steps x %d examples x %d accumulation, lr %s %s, warm-up %d, seed %d%n",
                train.steps(), train.batchSize(), train.gradAccum(), fmt(train.lr()), train.decay().name().toLowerCase(Locale.ROOT),
                train.warmupSteps(), train.seed());

        Trainer trainer = new Trainer(model, tasks, train);
        TrainingLoop.Steps steps = new TrainingLoop.Steps() {
            @Override public int step() { return trainer.step(); }
            @Override public void run(int until, Trainer.Listener listener) { trainer.run(until, listener); }
            @Override public AdamW optimizer() { return trainer.optimizer(); }
            @Override public List<Parameter> parameters() { return trainer.parameters(); }
            @Override public int epoch() { return trainer.sampler().epoch(); }
            @Override public int position() { return trainer.sampler().position(); }
            @Override public void resume(int step, int epoch, int position) {
                trainer.resume(step);
                trainer.sampler().seek(epoch, position);
            }
        };
        Path adapterDir = runDir.resolve("adapter");
        TrainingLoop.resume(config, steps, out);
        TrainingLoop.Totals totals = TrainingLoop.run(config, runDir, steps, adapters, adapterConfig(config, adapters, base, tasks),
                adapterDir, out, terminal);

        out.println("evaluating on the test splits...");
        List<Evaluation.TaskScore> scores = Evaluation.run(model, tasks, train.evalBatchSize());
        String table = Evaluation.table(scores);
        out.print(table);
        Files.writeString(runDir.resolve("eval.md"), table);
        ArrayNode evalJson = JSON.createArrayNode();
        for (Evaluation.TaskScore s : scores) {
            ObjectNode o = evalJson.addObject();
            o.put("task", s.task());
            o.put("examples", s.examples());
            o.put("correct", s.correct());
            o.put("accuracy", s.accuracy());
            o.put("chance", s.chance());
        }
        Files.writeString(runDir.resolve("eval.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(evalJson));
        double tps = totals.tokensPerSecond();
        out.printf(Locale.ROOT, "adapter saved to %s; %,.0f training tokens/s; total %s%n", adapterDir, tps,
                Progress.duration((System.nanoTime() - t0) / 1e9));
        return new Result(runDir, adapters.describe(), scores, adapterParams + headParams, tps, totals.seconds(),
                (System.nanoTime() - t0) / 1e9, totals.losses());
    }

    /**
     * One line per (step, adapted module) with the router's statistics of the step's last
     * micro-batch: tokens routed to each expert, gate mass, gate entropy, the balance and
     * contrastive losses (unweighted) and the cosine between experts' mean outputs.
     */
    static void writeRouting(BufferedWriter out, int step, MoeLoraAdapters moe) throws IOException {
        for (RoutingStats s : moe.stats()) {
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
    }

    /** adapter_config.json: the adapter settings as configured (PEFT's keys for LoRA) plus the task heads. */
    private static ObjectNode adapterConfig(RunConfig config, Adapters adapters, BaseModel base, List<Task> tasks) {
        ObjectNode o = peftConfig(config, adapters, base.description());
        ArrayNode heads = o.putArray("tasks");
        for (Task t : tasks) {
            ObjectNode h = heads.addObject();
            h.put("name", t.name());
            h.put("format", t.format().name().toLowerCase(Locale.ROOT));
            ArrayNode labels = h.putArray("labels");
            t.labels().forEach(labels::add);
        }
        return o;
    }

    /** The adapter settings as configured, under PEFT's keys for LoRA. */
    static ObjectNode peftConfig(RunConfig config, Adapters adapters, String baseModel) {
        ObjectNode o = JSON.createObjectNode();
        String type = config.string("adapter.type");
        o.put("peft_type", type.equals("lora") ? "LORA" : type.toUpperCase(Locale.ROOT));
        o.put("base_model_name_or_path", baseModel);
        o.put("description", adapters.describe());
        o.put("r", config.integer("adapter.rank"));
        o.put("lora_alpha", config.number("adapter.alpha"));
        o.put("lora_dropout", config.number("adapter.dropout"));
        ArrayNode targets = o.putArray("target_modules");
        config.strings("adapter.targets").forEach(targets::add);
        return o;
    }

    /** runs/<name>, or runs/train-<timestamp> when the name is empty. */
    public static Path runDirectory(RunConfig config) {
        String name = config.string("run.name");
        if (name.isEmpty()) name = "train-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
        return Path.of(config.string("run.dir")).resolve(name);
    }

    static String fmt(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }
}
