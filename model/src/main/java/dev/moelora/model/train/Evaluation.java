package dev.moelora.model.train;

import dev.moelora.model.data.Task;
import dev.moelora.model.task.TaskModel;
import dev.moelora.model.task.TaskModel.Item;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Accuracy per task on the test splits, and its table. */
public final class Evaluation {
    public record TaskScore(String task, int examples, int correct, double chance) {
        public double accuracy() { return examples == 0 ? 0 : (double) correct / examples; }
    }

    private Evaluation() {}

    /** Puts the adapters in eval mode (no dropout, no feature sampling) and runs the model over every test example of every task. */
    public static List<TaskScore> run(TaskModel model, List<Task> tasks, int batchSize) {
        model.adapters().setTraining(false);
        List<TaskScore> out = new ArrayList<>();
        for (Task t : tasks) {
            int correct = 0;
            for (int i = 0; i < t.test().size(); i += batchSize) {
                List<Item> batch = new ArrayList<>();
                for (int j = i; j < Math.min(t.test().size(), i + batchSize); j++) batch.add(new Item(t, t.test().get(j)));
                TaskModel.Outcome o = model.evaluate(batch);
                for (int k = 0; k < batch.size(); k++) if (o.predictions()[k] == o.answers()[k]) correct++;
            }
            out.add(new TaskScore(t.name(), t.test().size(), correct, t.chance()));
        }
        return out;
    }

    /** Unweighted mean of the tasks' accuracies, as the LLM-Adapters papers report an average. */
    public static double average(List<TaskScore> scores) {
        return scores.stream().mapToDouble(TaskScore::accuracy).average().orElse(0);
    }

    public static String table(List<TaskScore> scores) {
        StringBuilder sb = new StringBuilder();
        sb.append("| task | examples | accuracy | chance |\n|---|---:|---:|---:|\n");
        for (TaskScore s : scores) {
            sb.append(String.format(Locale.ROOT, "| %s | %d | %.3f | %.3f |%n", s.task(), s.examples(), s.accuracy(), s.chance()));
        }
        sb.append(String.format(Locale.ROOT, "| **average** | %d | %.3f | %.3f |%n",
                scores.stream().mapToInt(TaskScore::examples).sum(), average(scores),
                scores.stream().mapToDouble(TaskScore::chance).average().orElse(0)));
        return sb.toString();
    }
}
