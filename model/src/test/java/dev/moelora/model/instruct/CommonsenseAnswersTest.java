package dev.moelora.model.instruct;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.moelora.model.data.SharedData;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** LLM-Adapters' commonsense extract_answer on handwritten completions, and their test files read as test sets. */
class CommonsenseAnswersTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}: {1} -> {2}")
    @CsvSource(delimiter = '|', textBlock = """
            boolq         | the correct answer is true                      | true
            boolq         | false. Well, true                               | false
            boolq         | True                                            | ''
            boolq         | it is untrue                                    | true
            piqa          | the correct answer is solution2                 | solution2
            piqa          | Solution1                                       | ''
            ARC-Easy      | answer3 ### Response: answer1                   | answer3
            ARC-Challenge | I pick answer12                                 | answer1
            openbookqa    | answer5 or answer2                              | answer5
            social_i_qa   | the correct answer is answer2                   | answer2
            hellaswag     | ending4                                         | ending4
            hellaswag     | ending5 then ending2                            | ending2
            winogrande    | option2 is right                                | option2
            winogrande    | ''                                              | ''
            """)
    void firstAnswerWordOfTheResponseAsTheirRegularExpressionFindsIt(String task, String completion, String expected) {
        assertEquals(expected, CommonsenseAnswers.prediction(task, completion));
    }

    @Test
    void correctIsTheExactGoldString() {
        assertTrue(CommonsenseAnswers.correct("boolq", "  the correct answer is false\n", "false"));
        assertFalse(CommonsenseAnswers.correct("boolq", "the correct answer is false", "true"));
        assertFalse(CommonsenseAnswers.correct("piqa", "no idea", "solution1"), "no answer word predicts \"\"");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CommonsenseAnswers.prediction("siqa", "answer1"));
        assertTrue(e.getMessage().contains("'siqa' is not an LLM-Adapters commonsense task"), e.getMessage());
    }

    @Test
    void aGoldAnswerThatIsNoAnswerWordOfTheTaskIsRefusedNamingTheRecord() throws IOException {
        Path file = dir.resolve("test.json");
        Files.writeString(file, "[{\"instruction\": \"q?\", \"answer\": \"true\"}, {\"instruction\": \"q2?\", \"answer\": \"yes\"}]");
        IOException e = assertThrows(IOException.class, () -> CommonsenseEvaluation.read(file, "boolq"));
        assertTrue(e.getMessage().contains(file + ": record 1 (0-based), field 'answer': expected one of [true, false], found 'yes'"), e.getMessage());
    }

    @Test
    void everySharedCommonsenseTestFileReadsAsItsTask() throws IOException {
        Path root = SharedData.root().map(r -> r.resolve("llm-adapters/dataset")).orElse(null);
        assumeTrue(root != null && Files.isDirectory(root), "no shared LLM-Adapters dataset directory");
        Map<String, Integer> expected = Map.of("boolq", 3270, "piqa", 1838, "ARC-Easy", 2376, "ARC-Challenge", 1172, "openbookqa", 500);
        int found = 0;
        for (String task : CommonsenseAnswers.WORDS.keySet()) {
            Path file = root.resolve(task).resolve("test.json");
            if (!Files.isRegularFile(file)) continue;
            CommonsenseEvaluation.TestSet set = CommonsenseEvaluation.read(file, task);
            if (expected.containsKey(task)) assertEquals(expected.get(task), set.records().size(), task);
            found++;
        }
        assertTrue(found >= 5, "the five commonsense test files shared here; found " + found);
    }
}
