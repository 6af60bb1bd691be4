package dev.moelora.model.task;

import dev.moelora.model.data.Task;
import dev.moelora.model.data.TaskFormat;
import dev.moelora.model.nn.Init;
import dev.moelora.model.optim.Parameter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The trainable heads on top of the pooled sentence vector: one multiple-choice scorer shared by
 * every multiple-choice task ({@code score = pooled . w + b}, one per (question, choice) pair),
 * and one classifier per classification task ({@code logits = pooled W^T + b}). Like PEFT's
 * {@code modules_to_save}, heads are trained with the adapter and saved with it.
 */
public final class TaskHeads {
    private final Parameter choiceWeight; // (C, 1)
    private final Parameter choiceBias;   // (1, 1)
    private final Map<String, Parameter[]> classifiers = new LinkedHashMap<>(); // task -> {W (K, C), b (1, K)}

    public TaskHeads(int hidden, List<Task> tasks, DataType dtype, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        choiceWeight = new Parameter("head.choice.weight", Init.normal(random, dtype, 0.02, hidden, 1));
        choiceBias = new Parameter("head.choice.bias", Nd4j.zeros(dtype, 1, 1));
        for (Task t : tasks) {
            if (t.format() != TaskFormat.CLASSIFICATION) continue;
            int k = t.labels().size();
            classifiers.put(t.name(), new Parameter[] {
                new Parameter("head." + t.name() + ".weight", Init.normal(random, dtype, 0.02, k, hidden)),
                new Parameter("head." + t.name() + ".bias", Nd4j.zeros(dtype, 1, k))});
        }
    }

    public Parameter choiceWeight() { return choiceWeight; }
    public Parameter choiceBias() { return choiceBias; }

    /** {W (K, C), b (1, K)} of a classification task, or an error naming the known ones. */
    public Parameter[] classifier(String task) {
        Parameter[] p = classifiers.get(task);
        if (p == null) throw new IllegalArgumentException("no classification head for task '" + task + "'; heads exist for " + classifiers.keySet());
        return p;
    }

    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>(List.of(choiceWeight, choiceBias));
        for (Parameter[] p : classifiers.values()) out.addAll(List.of(p));
        return out;
    }
}
