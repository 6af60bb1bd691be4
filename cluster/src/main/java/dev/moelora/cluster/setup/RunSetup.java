package dev.moelora.cluster.setup;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.Task;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.optim.LrSchedule;
import dev.moelora.model.task.TaskHeads;
import dev.moelora.model.task.TaskModel;
import dev.moelora.model.train.TrainConfig;
import java.io.IOException;
import java.util.List;
import java.util.Locale;

/**
 * A run's parts as its configuration describes them: the frozen base model, the tasks, the
 * adapter family on the base model's layers, the task heads and the model that joins them. The
 * single-process trainer and every router of the expert-parallel runtime build them here, so
 * they build the same thing from the same configuration.
 */
public record RunSetup(BaseModel base, List<Task> tasks, TrainConfig train, Adapters adapters, TaskHeads heads, TaskModel model) {

    /** Builds every part; MoELoRA's experts are made by {@code banks} (here, or remote). */
    public static RunSetup build(RunConfig config, MoeLora.BankFactory banks) throws IOException {
        BaseModel base = BaseModel.load(config);
        List<Task> tasks = TaskData.load(config);
        TrainConfig train = trainConfig(config);
        Adapters adapters = AdapterFamily.apply(config, base.encoder(), train.seed(), banks);
        TaskHeads heads = new TaskHeads(base.encoder().config().hidden(), tasks, base.encoder().dataType(), train.seed() + 1);
        int maxChoices = 2, maxLabels = 2;
        for (Task t : tasks) {
            for (var e : t.train()) maxChoices = Math.max(maxChoices, e.choices().size());
            for (var e : t.test()) maxChoices = Math.max(maxChoices, e.choices().size());
            maxLabels = Math.max(maxLabels, t.labels().size());
        }
        TaskModel model = new TaskModel(base.encoder(), adapters, heads, base.tokenizer(), config.integer("data.max-length"),
                Math.max(train.batchSize(), train.evalBatchSize()), maxChoices, maxLabels);
        return new RunSetup(base, tasks, train, adapters, heads, model);
    }

    /** The {@code train.*} keys. */
    public static TrainConfig trainConfig(RunConfig config) {
        return new TrainConfig(config.integer("train.steps"), config.integer("train.batch-size"),
                config.integer("train.grad-accum"), config.number("train.lr"), config.integer("train.warmup-steps"),
                decay(config.string("train.decay")), config.number("train.weight-decay"), config.number("train.clip-norm"),
                config.longValue("train.seed"), config.integer("train.eval-batch-size"));
    }

    private static LrSchedule.Decay decay(String s) {
        try {
            return LrSchedule.Decay.valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("train.decay must be linear, cosine or constant, got '" + s + "'", e);
        }
    }
}
