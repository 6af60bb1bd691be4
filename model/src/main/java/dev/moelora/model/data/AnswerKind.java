package dev.moelora.model.data;

/**
 * How a math test set's gold answers are written and so how a completion is scored: a number
 * (AddSub, MultiArith, SingleEq, SVAMP, gsm8k, mawps) or an option letter A to E (AQuA, mathqa).
 * Read from the answers themselves, never from the file name.
 */
public enum AnswerKind { NUMBER, LETTER }
