package dev.moelora.model.instruct;

import dev.moelora.model.data.AnswerKind;
import dev.moelora.model.data.InstructionDataset;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Scores a generated completion against a math record's gold answer exactly as LLM-Adapters'
 * {@code evaluate.py} does (AGI-Edgerunners/LLM-Adapters, {@code extract_answer_number},
 * {@code extract_answer_letter} and the comparison in {@code main}):
 * <ul>
 *   <li>the response is the decoded text after the prompt's {@code "### Response:"}, up to any
 *       further {@code "### Response:"} the model writes ({@code output.split("### Response:")[1]}),
 *       stripped of surrounding whitespace;
 *   <li>number: every comma is removed, then the last match of {@code -?\d+\.?\d*} is the
 *       prediction; none gives +infinity (always wrong). So "1,234" is 1234, "-3" is -3, "5." is 5,
 *       and "3/4" is 4 (fractions are not evaluated, "3/4" yields the numbers 3 and 4); {@code \d}
 *       is any Unicode decimal digit, as in Python 3;
 *   <li>a number is correct when |gold - prediction| &lt;= 0.001 (their {@code miss});
 *   <li>letter (AQuA): the first of the capital letters A, B, C, D, E anywhere in the stripped
 *       response, "" when there is none; correct when it equals the gold letter. That is their rule
 *       word for word, so "Answer: (C)" predicts A, from "Answer".
 * </ul>
 * Pure functions of the text: it never generates and never reads files.
 */
public final class MathAnswers {
    /** Their tolerance: {@code abs(label - predict) <= miss} with {@code miss = 0.001}. */
    public static final double TOLERANCE = 0.001;
    private static final Pattern NUMBER = Pattern.compile("-?\\d+\\.?\\d*", Pattern.UNICODE_CHARACTER_CLASS);

    private MathAnswers() {}

    /** The part of a completion (the text generated after the prompt) that is scored. */
    public static String response(String completion) {
        int again = completion.indexOf(PromptTemplate.RESPONSE_MARK);
        return (again < 0 ? completion : completion.substring(0, again)).strip();
    }

    /** extract_answer_number: the last number of the response, +infinity when it has none. */
    public static double number(String completion) {
        Matcher m = NUMBER.matcher(response(completion).replace(",", ""));
        String last = null;
        while (m.find()) last = m.group();
        if (last == null) return Double.POSITIVE_INFINITY;
        StringBuilder ascii = new StringBuilder(last.length());
        for (int i = 0; i < last.length(); i++) {
            char c = last.charAt(i);
            ascii.append(Character.isDigit(c) ? (char) ('0' + Character.digit(c, 10)) : c);
        }
        return Double.parseDouble(ascii.toString());
    }

    /** extract_answer_letter: the first A-E of the response, "" when it has none. */
    public static String letter(String completion) {
        String r = response(completion);
        for (int i = 0; i < r.length(); i++) {
            char c = r.charAt(i);
            if (c >= 'A' && c <= 'E') return String.valueOf(c);
        }
        return "";
    }

    /** The prediction as evaluate.py records it: the number or the letter. */
    public static String prediction(AnswerKind kind, String completion) {
        if (kind == AnswerKind.LETTER) return letter(completion);
        double n = number(completion);
        return Double.isInfinite(n) ? "" : Double.toString(n);
    }

    /** Whether the completion answers {@code gold} (an answer {@link InstructionDataset#readMathTest} accepted). */
    public static boolean correct(AnswerKind kind, String completion, String gold) {
        if (kind == AnswerKind.LETTER) return letter(completion).equals(gold.trim());
        return Math.abs(InstructionDataset.number(gold) - number(completion)) <= TOLERANCE;
    }
}
