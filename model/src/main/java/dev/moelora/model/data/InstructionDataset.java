package dev.moelora.model.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Reads instruction-tuning files into {@link Instruction} records:
 * <ul>
 *   <li>LLM-Adapters JSON ({@code math_data.json}, {@code dataset/<Task>/train.json|test.json}): an
 *       array of {@code {"instruction", "input"?, "output"?, "answer"?}} objects; {@code answer} may
 *       be a string or a number;
 *   <li>GSM8K's original JSON lines ({@code train.jsonl}, {@code test.jsonl}): {@code {"question",
 *       "answer"}} where the answer is the worked solution ending in {@code #### <number>}; it becomes
 *       the record's output, and the number after the last {@code ####}, commas removed, its answer.
 * </ul>
 * A {@code .jsonl} file is GSM8K's format; anything else is read as LLM-Adapters JSON.
 *
 * <p>It never drops or repairs a record: a record that is not what its use needs (no output to
 * train on, no gold answer to score) fails the whole read with a {@link DatasetFormatException}
 * naming the file, the record (0-based array index, or 1-based line of a .jsonl) and the field.
 */
public final class InstructionDataset {
    /**
     * The records of one math test file, named after its task directory ({@code AddSub}) or, for a
     * file directly given, the file name; scored as {@code kind} says.
     */
    public record MathTestSet(String name, AnswerKind kind, List<Instruction> records) {
        public MathTestSet {
            records = List.copyOf(records);
        }
    }

    private static final ObjectMapper JSON_LINE = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final Pattern NUMBER = Pattern.compile("[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?");
    private static final Pattern LETTER = Pattern.compile("[A-E]");
    private static final String GSM8K_MARK = "####";

    private InstructionDataset() {}

    /** Every record of the file, as written. */
    public static List<Instruction> read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new DatasetFormatException(file, "no such file (expected LLM-Adapters JSON or GSM8K .jsonl)");
        return file.getFileName().toString().endsWith(".jsonl") ? readGsm8k(file) : readLlmAdapters(file);
    }

    /**
     * Records to train on. A record with an empty output is kept, as LLM-Adapters' finetune.py keeps
     * it (its target is then EOS alone; math_data.json has three such records); a file where no
     * record has an output is refused, since it is a test file or the wrong file.
     */
    public static List<Instruction> readTraining(Path file) throws IOException {
        List<Instruction> records = read(file);
        if (records.stream().allMatch(r -> r.output().isBlank())) {
            throw new DatasetFormatException(file, "field 'output' is empty in every record: nothing to train on (a test file?)");
        }
        return records;
    }

    /**
     * A math test file. Every record needs an answer; when all are one letter A to E the set is
     * scored by option letter, otherwise every answer must be a number (as Python's float reads
     * it: "15.0", "-3", ".5", "1e3").
     */
    public static MathTestSet readMathTest(Path file, String name) throws IOException {
        List<Instruction> records = read(file);
        boolean letters = true;
        for (int i = 0; i < records.size(); i++) {
            String a = records.get(i).answer().trim();
            if (a.isEmpty()) throw new DatasetFormatException(file, i, "answer", "expected the gold answer, found none" + lineHint(file, i));
            letters &= LETTER.matcher(a).matches();
        }
        if (!letters) {
            for (int i = 0; i < records.size(); i++) {
                String a = records.get(i).answer().trim();
                if (!NUMBER.matcher(a).matches()) {
                    throw new DatasetFormatException(file, i, "answer", "expected a number (or, in an option-letter set, "
                            + "every answer one of A-E), found '" + LlmAdaptersDataset.abbreviate(a) + "'" + lineHint(file, i));
                }
            }
        }
        return new MathTestSet(name, letters ? AnswerKind.LETTER : AnswerKind.NUMBER, records);
    }

    /**
     * A test file scored by an answer word, as LLM-Adapters' commonsense sets are ("true",
     * "solution2", "answer3", ...): every record's answer must be one of {@code words}, exactly
     * (their scoring compares the strings).
     */
    public static List<Instruction> readWordAnswerTest(Path file, java.util.Collection<String> words) throws IOException {
        List<Instruction> records = read(file);
        for (int i = 0; i < records.size(); i++) {
            String a = records.get(i).answer();
            if (!words.contains(a)) {
                throw new DatasetFormatException(file, i, "answer", "expected one of " + words + ", found '" + LlmAdaptersDataset.abbreviate(a) + "'"
                        + lineHint(file, i));
            }
        }
        return records;
    }

    /** The gold answer of a math record as a number; only for answers {@link #readMathTest} accepted. */
    public static double number(String answer) {
        return Double.parseDouble(answer.trim());
    }

    private static List<Instruction> readLlmAdapters(Path file) throws IOException {
        JsonNode root = LlmAdaptersDataset.parseJson(file);
        if (!root.isArray()) throw new DatasetFormatException(file, "expected a JSON array of records, found " + LlmAdaptersDataset.describe(root));
        if (root.isEmpty()) throw new DatasetFormatException(file, "expected at least one record, found an empty array");
        List<Instruction> records = new ArrayList<>(root.size());
        for (int i = 0; i < root.size(); i++) {
            JsonNode r = root.get(i);
            if (!r.isObject()) throw new DatasetFormatException(file, i, "expected a JSON object, found " + LlmAdaptersDataset.describe(r));
            String instruction = text(file, i, r, "instruction", true, false);
            if (instruction.isBlank()) throw new DatasetFormatException(file, i, "instruction", "expected the task text, found an empty string");
            records.add(new Instruction(instruction, text(file, i, r, "input", false, false), text(file, i, r, "output", false, false),
                    text(file, i, r, "answer", false, true)));
        }
        return records;
    }

    /** A string field; absent or null is "" unless required; a number is accepted where {@code numberOk}. */
    private static String text(Path file, int i, JsonNode record, String field, boolean required, boolean numberOk) throws DatasetFormatException {
        JsonNode v = record.get(field);
        if ((v == null || v.isNull()) && !required) return "";
        if (v != null && v.isTextual()) return v.textValue();
        if (v != null && numberOk && v.isNumber()) return v.asText();
        throw new DatasetFormatException(file, i, field, "expected a string" + (numberOk ? " or a number" : "") + ", found "
                + LlmAdaptersDataset.describe(v));
    }

    private static List<Instruction> readGsm8k(Path file) throws IOException {
        List<String> lines = Files.readAllLines(file);
        List<Instruction> records = new ArrayList<>(lines.size());
        for (int n = 0; n < lines.size(); n++) {
            String line = lines.get(n), at = "line " + (n + 1);
            if (line.isBlank()) throw new DatasetFormatException(file, at + ": blank (one JSON object per line, none empty)");
            JsonNode r;
            try {
                r = JSON_LINE.readTree(line);
            } catch (JsonProcessingException e) {
                throw new DatasetFormatException(file, at + ": malformed JSON: " + e.getOriginalMessage(), e);
            }
            if (r == null || !r.isObject()) throw new DatasetFormatException(file, at + ": expected a JSON object, found " + LlmAdaptersDataset.describe(r));
            JsonNode question = r.get("question"), answer = r.get("answer");
            if (question == null || !question.isTextual() || question.textValue().isBlank()) {
                throw new DatasetFormatException(file, at + ", field 'question': expected the problem text, found " + LlmAdaptersDataset.describe(question));
            }
            if (answer == null || !answer.isTextual()) {
                throw new DatasetFormatException(file, at + ", field 'answer': expected a solution ending in '#### <number>', found "
                        + LlmAdaptersDataset.describe(answer));
            }
            String solution = answer.textValue();
            int mark = solution.lastIndexOf(GSM8K_MARK);
            String gold = mark < 0 ? "" : solution.substring(mark + GSM8K_MARK.length()).trim().replace(",", "");
            if (!NUMBER.matcher(gold).matches()) {
                throw new DatasetFormatException(file, at + ", field 'answer': expected the solution to end in '#### <number>', found '"
                        + LlmAdaptersDataset.abbreviate(mark < 0 ? solution : solution.substring(mark)) + "'");
            }
            records.add(new Instruction(question.textValue(), "", solution, gold));
        }
        if (records.isEmpty()) throw new DatasetFormatException(file, "expected at least one JSON line, found none");
        return records;
    }

    /** Record i of a .jsonl file is its line i + 1. */
    private static String lineHint(Path file, int i) {
        return file.getFileName().toString().endsWith(".jsonl") ? " (line " + (i + 1) + ")" : "";
    }
}
