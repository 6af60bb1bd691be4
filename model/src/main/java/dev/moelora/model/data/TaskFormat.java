package dev.moelora.model.data;

/**
 * How a task is answered: score each (question, choice) pair and softmax over them, or classify into a
 * fixed label set.
 *
 * <p>The trainer picks its head and loss from this value alone; it must never be inferred from the
 * number of choices, because a two-choice multiple-choice task and a two-label classification task are
 * trained differently.
 */
public enum TaskFormat { MULTIPLE_CHOICE, CLASSIFICATION }
