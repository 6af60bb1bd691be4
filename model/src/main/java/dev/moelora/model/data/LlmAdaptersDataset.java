package dev.moelora.model.data;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;

/**
 * Loads the commonsense tasks of LLM-Adapters (ARC-Easy, ARC-Challenge, BoolQ, OpenBookQA, PIQA) from
 * their {@code train.json} / {@code test.json}: a JSON array of {@code {"instruction", "input", "output",
 * "answer"}} records where the question and the choices are packed into the instruction text.
 *
 * <p>Instruction layouts understood, told apart by the trailing {@code Answer format:} line:
 * <ul>
 *   <li>{@code answer1/.../answerN} (ARC, OpenBookQA; N is 3 to 5 in ARC):
 *       {@code "Please choose the correct answer to the question: Q\n\nAnswer1: c1 Answer2: c2 ...\n\nAnswer format: answer1/answer2/..."}
 *   <li>{@code solution1/.../solutionN} (PIQA):
 *       {@code "Please choose the correct solution to the question: Q\n\nSolution1: s1\n\nSolution2: s2\n\nAnswer format: solution1/solution2"}
 *   <li>{@code true/false} (BoolQ), a {@link TaskFormat#CLASSIFICATION} task whose labels are
 *       {@code [true, false]}, in the order the format line lists them:
 *       {@code "Please answer the following question with true or false, question: Q\n\nAnswer format: true/false"}
 * </ul>
 * The {@code answer} field names the correct choice by its format-line token ({@code answer2},
 * {@code solution1}, {@code true}). {@code output} only restates {@code answer} in prose and is not read;
 * {@code input} must be empty, since these tasks carry everything in the instruction.
 *
 * <p>It must never drop or repair a record: anything that does not match one of the layouts above fails
 * the whole load with a {@link DatasetFormatException} naming file, record, field and expectation, because
 * a silently shrunken test split makes every reported accuracy wrong.
 */
public final class LlmAdaptersDataset {

    /** The examples of one file and the format they share. {@code labels} is empty for multiple choice. */
    public record Split(TaskFormat format, List<String> labels, List<Example> examples) {
        public Split {
            labels = List.copyOf(labels);
            examples = List.copyOf(examples);
        }
    }

    private static final String FORMAT_LINE = "Answer format:";
    private static final String TRUE_FALSE = "true/false";
    private static final String TRUE_FALSE_PREAMBLE =
            "Please answer the following question with true or false, question:";
    /** Format-line token word -> instruction preamble; the choice markers are the word capitalised. */
    private static final List<ChoiceWord> CHOICE_WORDS = List.of(
            new ChoiceWord("answer", "Please choose the correct answer to the question:"),
            new ChoiceWord("solution", "Please choose the correct solution to the question:"));

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private LlmAdaptersDataset() {
    }

    /**
     * Loads one task directory: {@code test.json} is required, {@code train.json} is read when present
     * (PIQA ships only a test split). The task is named after the directory.
     */
    public static Task load(Path taskDir) throws IOException {
        Path testFile = taskDir.resolve("test.json");
        Path trainFile = taskDir.resolve("train.json");
        if (!Files.isRegularFile(testFile)) {
            throw new DatasetFormatException(taskDir, "expected a test.json in this task directory, found none");
        }
        Split test = readFile(testFile);
        List<Example> train = List.of();
        if (Files.exists(trainFile)) {
            Split trainSplit = readFile(trainFile);
            if (trainSplit.format() != test.format() || !trainSplit.labels().equals(test.labels())) {
                throw new DatasetFormatException(trainFile, "format " + trainSplit.format() + " " + trainSplit.labels()
                        + " differs from " + testFile + " (" + test.format() + " " + test.labels() + ")");
            }
            train = trainSplit.examples();
        }
        return new Task(taskDir.getFileName().toString(), test.format(), test.labels(), train, test.examples());
    }

    /**
     * Reads every record of one file. All records must share one format (and, for classification, one
     * label set); an empty array is an error, since it cannot say which format it is.
     */
    public static Split readFile(Path file) throws IOException {
        JsonNode root = parseJson(file);
        if (!root.isArray()) {
            throw new DatasetFormatException(file, "expected a JSON array of records, found " + describe(root));
        }
        if (root.isEmpty()) {
            throw new DatasetFormatException(file, "expected at least one record, found an empty array");
        }
        List<Example> examples = new ArrayList<>(root.size());
        AnswerFormat first = null;
        for (int i = 0; i < root.size(); i++) {
            JsonNode record = root.get(i);
            if (!record.isObject()) {
                throw new DatasetFormatException(file, i, "expected a JSON object, found " + describe(record));
            }
            String instruction = requiredString(file, i, record, "instruction");
            String answer = requiredString(file, i, record, "answer").trim();
            JsonNode input = record.get("input");
            if (input != null && !(input.isTextual() && input.asText().isBlank())) {
                throw new DatasetFormatException(file, i, "input",
                        "expected an empty string (the instruction carries question and choices), found " + describe(input));
            }
            String formatSpec = formatSpec(file, i, instruction);
            int index = i;
            AnswerFormat format = AnswerFormat.parse(formatSpec).orElseThrow(() -> new DatasetFormatException(
                    file, index, "instruction", "unknown answer format '" + formatSpec
                            + "'; expected true/false, answer1/.../answerN or solution1/.../solutionN"));
            if (first == null) {
                first = format;
            } else if (format.format() != first.format() || !format.labels().equals(first.labels())) {
                throw new DatasetFormatException(file, i, "instruction", "answer format '" + formatSpec
                        + "' is " + format.format() + ", but record 0 is " + first.format() + " " + first.labels()
                        + "; one file holds one task format");
            }
            examples.add(toExample(file, i, instruction, answer, format));
        }
        return new Split(first.format(), first.labels(), examples);
    }

    /** The file as a JSON tree; malformed JSON is a {@link DatasetFormatException} with the line and column. */
    static JsonNode parseJson(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return JSON.readTree(in);
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            String where = at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
            throw new DatasetFormatException(file, "malformed JSON" + where + ": " + e.getOriginalMessage(), e);
        }
    }

    private static String requiredString(Path file, int i, JsonNode record, String field) throws DatasetFormatException {
        JsonNode value = record.get(field);
        if (value == null || !value.isTextual()) {
            throw new DatasetFormatException(file, i, field, "expected a string, found " + describe(value));
        }
        return value.asText();
    }

    private static String formatSpec(Path file, int i, String instruction) throws DatasetFormatException {
        int at = instruction.lastIndexOf(FORMAT_LINE);
        if (at < 0) {
            throw new DatasetFormatException(file, i, "instruction",
                    "expected an '" + FORMAT_LINE + " ...' line at the end, found none");
        }
        return instruction.substring(at + FORMAT_LINE.length()).trim();
    }

    private static Example toExample(Path file, int i, String instruction, String answer, AnswerFormat format)
            throws DatasetFormatException {
        String stem = instruction.substring(0, instruction.lastIndexOf(FORMAT_LINE)).strip();
        if (!stem.startsWith(format.preamble())) {
            throw new DatasetFormatException(file, i, "instruction", "expected the text to start with '"
                    + format.preamble() + "' for answer format " + format.tokens() + ", found '" + abbreviate(stem) + "'");
        }
        String body = stem.substring(format.preamble().length());
        int answerIndex = format.tokens().indexOf(answer);
        if (answerIndex < 0) {
            throw new DatasetFormatException(file, i, "answer",
                    "expected one of " + format.tokens() + ", found '" + answer + "'");
        }
        String question;
        List<String> choices;
        if (format.format() == TaskFormat.CLASSIFICATION) {
            question = body.trim();
            choices = format.labels();
        } else {
            Matcher marker = format.marker().matcher(body);
            List<Integer> numbers = new ArrayList<>();
            List<int[]> spans = new ArrayList<>();
            while (marker.find()) {
                numbers.add(Integer.parseInt(marker.group(1)));
                spans.add(new int[] {marker.start(), marker.end()});
            }
            if (!numbers.equals(IntStream.rangeClosed(1, format.tokens().size()).boxed().toList())) {
                throw new DatasetFormatException(file, i, "instruction", "the format line announces "
                        + format.tokens().size() + " choices " + format.tokens() + ", but the text has "
                        + format.markerWord() + "N: markers numbered " + numbers);
            }
            question = body.substring(0, spans.get(0)[0]).trim();
            choices = new ArrayList<>();
            for (int k = 0; k < spans.size(); k++) {
                int end = k + 1 < spans.size() ? spans.get(k + 1)[0] : body.length();
                String choice = body.substring(spans.get(k)[1], end).trim();
                if (choice.isEmpty()) {
                    throw new DatasetFormatException(file, i, "instruction",
                            "expected text after " + format.markerWord() + (k + 1) + ":, found none");
                }
                choices.add(choice);
            }
        }
        if (question.isEmpty()) {
            throw new DatasetFormatException(file, i, "instruction",
                    "expected a question after '" + format.preamble() + "', found none");
        }
        return new Example(question, choices, answerIndex);
    }

    /** What a JSON value is, for an error message: "a JSON number 3", "nothing (field missing)". */
    static String describe(JsonNode node) {
        if (node == null || node.isMissingNode()) {
            return node == null ? "nothing (field missing)" : "nothing (empty file)";
        }
        if (node.isNull()) {
            return "null";
        }
        String type = node.getNodeType().name().toLowerCase(Locale.ROOT);
        return node.isContainerNode() ? "a JSON " + type : "a JSON " + type + " " + abbreviate(node.toString());
    }

    static String abbreviate(String text) {
        return text.length() <= 80 ? text : text.substring(0, 77) + "...";
    }

    private record ChoiceWord(String token, String preamble) {
    }

    /**
     * A recognised {@code Answer format:} line: its tokens (what {@code answer} may be), the task format,
     * the labels (classification only), the preamble the instruction must start with and, for multiple
     * choice, the pattern of the numbered choice markers in the text.
     */
    private record AnswerFormat(TaskFormat format, List<String> tokens, List<String> labels, String preamble,
                                String markerWord, Pattern marker) {

        /** The recognised format for a format-line spec, or empty if it is of no known kind. */
        static Optional<AnswerFormat> parse(String spec) {
            if (spec.equals(TRUE_FALSE)) {
                List<String> labels = List.of(spec.split("/"));
                return Optional.of(new AnswerFormat(
                        TaskFormat.CLASSIFICATION, labels, labels, TRUE_FALSE_PREAMBLE, null, null));
            }
            String[] tokens = spec.split("/", -1);
            for (ChoiceWord word : CHOICE_WORDS) {
                if (tokens.length >= 2 && isNumberedSequence(tokens, word.token())) {
                    String markerWord = Character.toUpperCase(word.token().charAt(0)) + word.token().substring(1);
                    // A marker glued to a preceding letter is part of a word, not a choice boundary.
                    Pattern marker = Pattern.compile("(?<![A-Za-z])" + markerWord + "(\\d+):");
                    return Optional.of(new AnswerFormat(TaskFormat.MULTIPLE_CHOICE, List.of(tokens), List.of(),
                            word.preamble(), markerWord, marker));
                }
            }
            return Optional.empty();
        }

        private static boolean isNumberedSequence(String[] tokens, String word) {
            for (int k = 0; k < tokens.length; k++) {
                if (!tokens[k].equals(word + (k + 1))) {
                    return false;
                }
            }
            return true;
        }
    }
}
