package dev.moelora.model.data;

import java.util.List;
import java.util.Objects;

/**
 * One labelled example. For {@link TaskFormat#CLASSIFICATION}, choices are the task's labels (same list
 * for every example); answer is an index into choices.
 *
 * <p>Validated on construction so that a trainer holding an {@code Example} never has to re-check it; it
 * must never hold a mutable list, so the choices are copied.
 */
public record Example(String question, List<String> choices, int answer) {

    public Example {
        Objects.requireNonNull(question, "question");
        Objects.requireNonNull(choices, "choices");
        if (question.isBlank()) {
            throw new IllegalArgumentException("question is blank");
        }
        choices = List.copyOf(choices);
        if (choices.size() < 2) {
            throw new IllegalArgumentException("need at least 2 choices, got " + choices.size() + ": " + choices);
        }
        for (int i = 0; i < choices.size(); i++) {
            if (choices.get(i).isBlank()) {
                throw new IllegalArgumentException("choice " + i + " is blank in " + choices);
            }
        }
        if (answer < 0 || answer >= choices.size()) {
            throw new IllegalArgumentException(
                    "answer " + answer + " is not an index into " + choices.size() + " choices");
        }
    }
}
