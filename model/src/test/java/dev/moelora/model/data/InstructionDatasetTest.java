package dev.moelora.model.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class InstructionDatasetTest {
    @TempDir
    Path dir;

    private Path write(String name, String text) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' missing from: " + e.getMessage());
    }

    @Test
    void llmAdaptersRecordsKeepEveryFieldAndDefaultTheAbsentOnesToEmpty() throws IOException {
        Path f = write("train.json", """
                [{"instruction": "Add 2 and 3.", "input": "", "output": "\\nA: 2 + 3 = 5. The answer is 5.", "answer": "5"},
                 {"instruction": "Translate.", "input": "bonjour", "output": "hello"},
                 {"instruction": "How many?", "input": null, "answer": 7.5}]
                """);
        List<Instruction> r = InstructionDataset.read(f);
        assertEquals(new Instruction("Add 2 and 3.", "", "\nA: 2 + 3 = 5. The answer is 5.", "5"), r.get(0));
        assertEquals(new Instruction("Translate.", "bonjour", "hello", ""), r.get(1));
        assertEquals(new Instruction("How many?", "", "", "7.5"), r.get(2));
    }

    @Test
    void gsm8kLinesBecomeQuestionSolutionAndTheNumberAfterTheMarkWithoutCommas() throws IOException {
        Path f = write("test.jsonl", """
                {"question": "Q1?", "answer": "12 * 90 = <<12*90=1080>>1080\\n#### 1,080"}
                {"question": "Q2?", "answer": "She loses 10.\\n#### -10"}
                """);
        List<Instruction> r = InstructionDataset.read(f);
        assertEquals(new Instruction("Q1?", "", "12 * 90 = <<12*90=1080>>1080\n#### 1,080", "1080"), r.get(0));
        assertEquals("-10", r.get(1).answer());
        InstructionDataset.MathTestSet set = InstructionDataset.readMathTest(f, "gsm8k-original");
        assertEquals(AnswerKind.NUMBER, set.kind());
    }

    @Test
    void answerKindIsReadFromTheGoldAnswers() throws IOException {
        Path letters = write("aqua.json", "[{\"instruction\": \"q\", \"answer\": \"A\"}, {\"instruction\": \"q\", \"answer\": \"E\"}]");
        assertEquals(AnswerKind.LETTER, InstructionDataset.readMathTest(letters, "x").kind());
        Path numbers = write("n.json", "[{\"instruction\": \"q\", \"answer\": \"15.0\"}, {\"instruction\": \"q\", \"answer\": \"-.5\"}]");
        assertEquals(AnswerKind.NUMBER, InstructionDataset.readMathTest(numbers, "x").kind());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            not an array          | {"instruction": "q"}                                            | expected a JSON array
            empty array           | []                                                              | at least one record
            record not an object  | ["q"]                                                           | record 0 (0-based): expected a JSON object
            instruction missing   | [{"output": "o"}]                                               | record 0 (0-based), field 'instruction'
            instruction blank     | [{"instruction": "o"}, {"instruction": " ", "output": "o"}]     | record 1 (0-based), field 'instruction'
            input not a string    | [{"instruction": "q", "input": 3, "output": "o"}]               | field 'input': expected a string, found a JSON number 3
            output an object      | [{"instruction": "q", "output": {"a": 1}}]                      | field 'output'
            malformed JSON        | [{"instruction": "q",,}]                                        | malformed JSON at line 1
            """)
    void malformedJsonFilesNameFileRecordAndField(String what, String json, String expected) throws IOException {
        Path f = write("bad.json", json);
        DatasetFormatException e = assertThrows(DatasetFormatException.class, () -> InstructionDataset.read(f));
        assertMentions(e, f.toString(), expected);
    }

    @Test
    void trainingNeedsAnOutputAndEvaluationANumberOrLetterAnswer() throws IOException {
        Path someOutput = write("a.json", "[{\"instruction\": \"q\", \"output\": \"o\"}, {\"instruction\": \"q\", \"output\": \"\"}]");
        assertEquals(2, InstructionDataset.readTraining(someOutput).size(), "an empty output trains EOS alone, as in LLM-Adapters");
        Path noOutput = write("e.json", "[{\"instruction\": \"q\", \"answer\": \"1\"}, {\"instruction\": \"q\", \"output\": \"\"}]");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.readTraining(noOutput)),
                noOutput.toString(), "field 'output' is empty in every record");
        Path noAnswer = write("b.json", "[{\"instruction\": \"q\", \"answer\": \"3\"}, {\"instruction\": \"q\"}]");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.readMathTest(noAnswer, "b")),
                "record 1 (0-based), field 'answer'", "gold answer");
        Path mixed = write("c.json", "[{\"instruction\": \"q\", \"answer\": \"3\"}, {\"instruction\": \"q\", \"answer\": \"B\"}]");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.readMathTest(mixed, "c")),
                "record 1 (0-based), field 'answer'", "expected a number", "'B'");
        Path javaOnly = write("d.json", "[{\"instruction\": \"q\", \"answer\": \"4d\"}]");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.readMathTest(javaOnly, "d")), "'4d'");
    }

    @Test
    void malformedGsm8kLinesAreNamedByLine() throws IOException {
        Path noMark = write("x.jsonl", "{\"question\": \"q\", \"answer\": \"#### 3\"}\n{\"question\": \"q\", \"answer\": \"it is 4\"}\n");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.read(noMark)),
                noMark.toString(), "line 2, field 'answer'", "#### <number>");
        Path blank = write("y.jsonl", "{\"question\": \"q\", \"answer\": \"#### 3\"}\n\n{\"question\": \"q\", \"answer\": \"#### 4\"}\n");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.read(blank)), "line 2: blank");
        Path noQuestion = write("z.jsonl", "{\"answer\": \"#### 3\"}\n");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.read(noQuestion)), "line 1, field 'question'");
        Path notJson = write("w.jsonl", "{\"question\": \"q\", \"answer\": \"#### 3\"} trailing\n");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.read(notJson)), "line 1: malformed JSON");
        assertMentions(assertThrows(DatasetFormatException.class, () -> InstructionDataset.read(dir.resolve("absent.json"))), "no such file");
    }

    // ---- the shared data, when present -------------------------------------------------------------

    private static Path shared(String relative) {
        Path root = SharedData.root().orElse(null);
        assumeTrue(root != null && Files.exists(root.resolve(relative)), "shared data " + relative + " not present");
        return root.resolve(relative);
    }

    @ParameterizedTest
    @CsvSource({"AddSub, NUMBER", "MultiArith, NUMBER", "SVAMP, NUMBER", "SingleEq, NUMBER", "gsm8k, NUMBER", "mawps, NUMBER",
                "AQuA, LETTER", "mathqa, LETTER"})
    void everyMathTestFileLoadsWithItsAnswerKind(String task, AnswerKind kind) throws IOException {
        Path f = shared("llm-adapters/dataset/" + task + "/test.json");
        InstructionDataset.MathTestSet set = InstructionDataset.readMathTest(f, task);
        assertEquals(kind, set.kind());
        assertEquals(new ObjectMapper().readTree(f.toFile()).size(), set.records().size());
    }

    @Test
    void mathTrainingDataAndOriginalGsm8kLoad() throws IOException {
        List<Instruction> math = InstructionDataset.readTraining(shared("llm-adapters/ft-training_set/math_data.json"));
        assertTrue(math.size() > 1000, "math_data.json has " + math.size() + " records");
        for (String split : new String[] {"train", "test"}) {
            Path f = shared("gsm8k/" + split + ".jsonl");
            List<Instruction> records = InstructionDataset.readTraining(f);
            assertEquals(Files.readAllLines(f).size(), records.size());
            InstructionDataset.readMathTest(f, "gsm8k");
        }
        Map<String, String> first = Map.of("answer", InstructionDataset.read(shared("gsm8k/test.jsonl")).get(0).answer());
        assertEquals("18", first.get("answer"));
    }
}
