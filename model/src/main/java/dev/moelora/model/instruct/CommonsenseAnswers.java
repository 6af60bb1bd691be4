package dev.moelora.model.instruct;

import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Scores a generated completion on an LLM-Adapters commonsense task exactly as their
 * {@code commonsense_evaluate.py} does (AGI-Edgerunners/LLM-Adapters, {@code extract_answer} and
 * the comparison in {@code main}): the response is the decoded text after the prompt's
 * {@code "### Response:"} up to any further one, stripped ({@link MathAnswers#response}); the
 * prediction is the first (leftmost) occurrence in it of one of the task's answer words, ""
 * when there is none; it is correct when it equals the gold answer string, case and all. The
 * words per task are theirs: {@code true|false} (boolq), {@code solution1|solution2} (piqa),
 * {@code answer1..answer5} (social_i_qa, ARC-Challenge, ARC-Easy, openbookqa),
 * {@code ending1..ending4} (hellaswag), {@code option1|option2} (winogrande). Pure functions of
 * the text: it never generates and never reads files.
 */
public final class CommonsenseAnswers {
    /** The task names their script accepts ({@code --dataset}), each with its answer words in their regular expression's order. */
    public static final Map<String, List<String>> WORDS = Map.of(
            "boolq", List.of("true", "false"),
            "piqa", List.of("solution1", "solution2"),
            "social_i_qa", List.of("answer1", "answer2", "answer3", "answer4", "answer5"),
            "ARC-Challenge", List.of("answer1", "answer2", "answer3", "answer4", "answer5"),
            "ARC-Easy", List.of("answer1", "answer2", "answer3", "answer4", "answer5"),
            "openbookqa", List.of("answer1", "answer2", "answer3", "answer4", "answer5"),
            "hellaswag", List.of("ending1", "ending2", "ending3", "ending4"),
            "winogrande", List.of("option1", "option2"));

    /** Accuracy of guessing, for the table: 1 / the options a record of the task offers. */
    private static final Map<String, Double> CHANCE = Map.of("boolq", 0.5, "piqa", 0.5, "social_i_qa", 1.0 / 3, "ARC-Challenge", 0.25,
            "ARC-Easy", 0.25, "openbookqa", 0.25, "hellaswag", 0.25, "winogrande", 0.5);

    private CommonsenseAnswers() {}

    public static boolean isTask(String task) {
        return WORDS.containsKey(task);
    }

    /** The task's answer words; an unknown task is an error listing the known ones. */
    public static List<String> words(String task) {
        List<String> w = WORDS.get(task);
        if (w == null) throw new IllegalArgumentException("'" + task + "' is not an LLM-Adapters commonsense task (" + new java.util.TreeSet<>(WORDS.keySet()) + ")");
        return w;
    }

    public static double chance(String task) {
        words(task);
        return CHANCE.get(task);
    }

    /** extract_answer: the first answer word of the task in the response, "" when there is none. */
    public static String prediction(String task, String completion) {
        Matcher m = Pattern.compile(String.join("|", words(task))).matcher(MathAnswers.response(completion));
        return m.find() ? m.group() : "";
    }

    /** Their {@code label == predict}. */
    public static boolean correct(String task, String completion, String gold) {
        return prediction(task, completion).equals(gold);
    }
}
