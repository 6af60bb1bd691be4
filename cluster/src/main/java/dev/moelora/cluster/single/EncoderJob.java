package dev.moelora.cluster.single;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.AdapterJson;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.cluster.job.Preemption;
import dev.moelora.cluster.job.Progress;
import dev.moelora.cluster.job.RunDirectory;
import dev.moelora.cluster.setup.BaseModel;
import dev.moelora.cluster.setup.RunSetup;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.Task;
import dev.moelora.model.data.TaskFormat;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.task.TaskHeads;
import dev.moelora.model.task.TaskModel;
import dev.moelora.model.train.Evaluation;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.model.train.Trainer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * One single-process training run of an encoder over tasks, end to end (a decoder's is
 * {@link InstructionJob}, an expert-parallel run's is the runtime's job): base model, tasks,
 * adapter and heads, training with progress and per-step JSONL metrics, checkpoints and the final
 * adapter, and the evaluation table (none when the run is preempted). Everything it writes goes
 * under the run directory (checkpoints under checkpoint.dir when that is set).
 */
public final class EncoderJob {
    private EncoderJob() {}

    public static JobResult run(RunConfig config, PrintStream out, boolean terminal) throws IOException {
        return run(config, out, terminal, () -> Preemption.install(config.duration("checkpoint.preemption-timeout")));
    }

    /** The run, with {@code preemption} deciding when it stops early at a checkpoint (this JVM's SIGTERM, or a test's condition). */
    public static JobResult run(RunConfig config, PrintStream out, boolean terminal, Supplier<Preemption> preemption) throws IOException {
        if (config.string("data.source").equals("instructions")) {
            throw new IllegalArgumentException("data.source = instructions trains a decoder: set model.name = llama and model.path");
        }
        long t0 = System.nanoTime();
        Path runDir = RunDirectory.create(config);
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
        printTasks(out, tasks);
        printTraining(out, train, "examples", "");

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
        TrainingLoop.Totals totals = TrainingLoop.run(config, runDir, steps, adapters,
                AdapterJson.of(config, adapters.describe(), base.description(), null, tasks), adapterDir, out, terminal, preemption);
        if (totals.preempted()) {
            return new JobResult(runDir, adapters.describe(), List.of(), adapterParams + headParams, totals.tokensPerSecond(), totals.seconds(),
                    (System.nanoTime() - t0) / 1e9, totals.losses());
        }

        out.println("evaluating on the test splits...");
        List<Evaluation.TaskScore> scores = Evaluation.run(model, tasks, train.evalBatchSize());
        String table = Evaluation.table(scores);
        out.print(table);
        RunDirectory.writeEvaluation(runDir, table, RunDirectory.scoresJson(scores));
        double tps = totals.tokensPerSecond();
        out.printf(Locale.ROOT, "adapter saved to %s; %,.0f training tokens/s; total %s%n", adapterDir, tps,
                Progress.duration((System.nanoTime() - t0) / 1e9));
        return new JobResult(runDir, adapters.describe(), scores, adapterParams + headParams, tps, totals.seconds(),
                (System.nanoTime() - t0) / 1e9, totals.losses());
    }

    /** One header line per task: name, format, split sizes, chance. */
    public static void printTasks(PrintStream out, List<Task> tasks) {
        for (Task t : tasks) {
            out.printf(Locale.ROOT, "  task       : %-14s %-15s train %,6d  test %,5d  chance %.3f%n", t.name(),
                    t.format() == TaskFormat.MULTIPLE_CHOICE ? "multiple-choice" : "classification", t.train().size(), t.test().size(), t.chance());
        }
    }

    /** The header line of the optimisation settings; {@code extra} ends it (e.g. ", grouped by length"). */
    public static void printTraining(PrintStream out, TrainConfig train, String unit, String extra) {
        out.printf(Locale.ROOT, "  training   : %d steps x %d %s x %d accumulation, lr %s %s, warm-up %d, seed %d%s%n",
                train.steps(), train.batchSize(), unit, train.gradAccum(), Adapters.number(train.lr()), train.decay().name().toLowerCase(Locale.ROOT),
                train.warmupSteps(), train.seed(), extra);
    }
}
