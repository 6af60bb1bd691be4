package dev.moelora.model.data;

import java.util.List;
import java.util.Objects;

/**
 * A named task with its train and test splits (train may be empty when a dataset ships only a test split).
 *
 * <p>For {@link TaskFormat#CLASSIFICATION}, {@code labels} is the label set and every example's choices
 * equal it, so a classifier head can be sized once per task. For {@link TaskFormat#MULTIPLE_CHOICE},
 * {@code labels} is empty and each example carries its own choices. The test split must not be empty:
 * a task that cannot be evaluated has no chance level and no accuracy.
 */
public record Task(String name, TaskFormat format, List<String> labels, List<Example> train, List<Example> test) {

    public Task {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(format, "format");
        if (name.isBlank()) {
            throw new IllegalArgumentException("task name is blank");
        }
        labels = List.copyOf(labels);
        train = List.copyOf(train);
        test = List.copyOf(test);
        if (test.isEmpty()) {
            throw new IllegalArgumentException("task " + name + ": test split is empty");
        }
        switch (format) {
            case CLASSIFICATION -> {
                if (labels.size() < 2) {
                    throw new IllegalArgumentException(
                            "task " + name + ": classification needs at least 2 labels, got " + labels);
                }
                requireChoicesAreLabels(name, "train", labels, train);
                requireChoicesAreLabels(name, "test", labels, test);
            }
            case MULTIPLE_CHOICE -> {
                if (!labels.isEmpty()) {
                    throw new IllegalArgumentException(
                            "task " + name + ": multiple-choice tasks have no label set, got " + labels);
                }
            }
        }
    }

    private static void requireChoicesAreLabels(String name, String split, List<String> labels, List<Example> examples) {
        for (int i = 0; i < examples.size(); i++) {
            if (!examples.get(i).choices().equals(labels)) {
                throw new IllegalArgumentException("task " + name + ": " + split + " example " + i + " has choices "
                        + examples.get(i).choices() + ", expected the task's labels " + labels);
            }
        }
    }

    /** Accuracy of uniform guessing on the test split: 1/labels for classification, mean of 1/choices for MC. */
    public double chance() {
        return switch (format) {
            case CLASSIFICATION -> 1.0 / labels.size();
            case MULTIPLE_CHOICE -> test.stream().mapToDouble(e -> 1.0 / e.choices().size()).average().orElseThrow();
        };
    }
}
