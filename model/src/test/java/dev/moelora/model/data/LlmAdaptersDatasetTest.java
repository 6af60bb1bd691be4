package dev.moelora.model.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LlmAdaptersDatasetTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static final String ARC = "Please choose the correct answer to the question: Which factor will most likely "
            + "cause a person to develop a fever?\n\nAnswer1: a leg muscle relaxing after exercise Answer2: a bacterial "
            + "population in the bloodstream Answer3: several viral particles on the skin Answer4: carbohydrates being "
            + "digested in the stomach\n\nAnswer format: answer1/answer2/answer3/answer4";
    private static final String PIQA = "Please choose the correct solution to the question: How do I ready a guinea pig "
            + "cage?\n\nSolution1: Use bedding made of ripped paper strips.\n\nSolution2: Use bedding made of ripped "
            + "jeans material.\n\nAnswer format: solution1/solution2";
    private static final String BOOLQ = "Please answer the following question with true or false, question: do iran "
            + "and afghanistan speak the same language?\n\nAnswer format: true/false";

    @TempDir
    Path dir;

    // ---- real files --------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"ARC-Easy", "ARC-Challenge", "boolq", "openbookqa", "piqa"})
    void everyRecordOfTheRealFilesLoads(String name) throws IOException {
        Path taskDir = realTaskDir(name);
        Task task = LlmAdaptersDataset.load(taskDir);

        assertEquals(name, task.name());
        assertEquals(arrayLength(taskDir.resolve("test.json")), task.test().size());
        Path trainFile = taskDir.resolve("train.json");
        assertEquals(Files.exists(trainFile) ? arrayLength(trainFile) : 0, task.train().size());
        if (name.equals("boolq")) {
            assertEquals(TaskFormat.CLASSIFICATION, task.format());
            assertEquals(List.of("true", "false"), task.labels());
            assertEquals(0.5, task.chance());
        } else {
            assertEquals(TaskFormat.MULTIPLE_CHOICE, task.format());
            assertTrue(task.labels().isEmpty());
        }
    }

    @Test
    void realArcHasThreeFourAndFiveChoiceQuestions() throws IOException {
        Task arc = LlmAdaptersDataset.load(realTaskDir("ARC-Easy"));
        List<Integer> sizes = arc.train().stream().map(e -> e.choices().size()).distinct().sorted().toList();
        assertEquals(List.of(3, 4, 5), sizes);
        // Mostly 4 choices, a few 3 and 5: chance sits just under 1/4.
        assertTrue(arc.chance() > 0.249 && arc.chance() < 0.252, "chance " + arc.chance());
    }

    @Test
    void piqaShipsOnlyATestSplit() throws IOException {
        Task piqa = LlmAdaptersDataset.load(realTaskDir("piqa"));
        assertTrue(piqa.train().isEmpty());
        assertEquals(0.5, piqa.chance());
    }

    // ---- parsing each layout -----------------------------------------------------------------------

    @Test
    void parsesArcQuestionChoicesAndAnswer() throws IOException {
        LlmAdaptersDataset.Split split = LlmAdaptersDataset.readFile(write("t.json", records(record(ARC, "answer2"))));

        assertEquals(TaskFormat.MULTIPLE_CHOICE, split.format());
        assertEquals(List.of(), split.labels());
        Example e = split.examples().get(0);
        assertEquals("Which factor will most likely cause a person to develop a fever?", e.question());
        assertEquals(List.of("a leg muscle relaxing after exercise", "a bacterial population in the bloodstream",
                "several viral particles on the skin", "carbohydrates being digested in the stomach"), e.choices());
        assertEquals(1, e.answer());
    }

    @Test
    void choiceCountComesFromTheFormatLine() throws IOException {
        String three = "Please choose the correct answer to the question: Q?\n\nAnswer1: a Answer2: b Answer3: c"
                + "\n\nAnswer format: answer1/answer2/answer3";
        String five = "Please choose the correct answer to the question: Q?\n\nAnswer1: a Answer2: b Answer3: c "
                + "Answer4: d Answer5: e\n\nAnswer format: answer1/answer2/answer3/answer4/answer5";
        List<Example> examples = LlmAdaptersDataset.readFile(
                write("t.json", records(record(three, "answer3"), record(five, "answer5")))).examples();

        assertEquals(new Example("Q?", List.of("a", "b", "c"), 2), examples.get(0));
        assertEquals(new Example("Q?", List.of("a", "b", "c", "d", "e"), 4), examples.get(1));
    }

    @Test
    void parsesPiqaSolutions() throws IOException {
        Example e = LlmAdaptersDataset.readFile(write("t.json", records(record(PIQA, "solution2")))).examples().get(0);

        assertEquals("How do I ready a guinea pig cage?", e.question());
        assertEquals(List.of("Use bedding made of ripped paper strips.", "Use bedding made of ripped jeans material."),
                e.choices());
        assertEquals(1, e.answer());
    }

    @Test
    void boolqIsClassificationWithLabelsInFormatLineOrder() throws IOException {
        LlmAdaptersDataset.Split split = LlmAdaptersDataset.readFile(
                write("t.json", records(record(BOOLQ, "true"), record(BOOLQ, "false"))));

        assertEquals(TaskFormat.CLASSIFICATION, split.format());
        assertEquals(List.of("true", "false"), split.labels());
        assertEquals("do iran and afghanistan speak the same language?", split.examples().get(0).question());
        assertEquals(List.of("true", "false"), split.examples().get(0).choices());
        assertEquals(0, split.examples().get(0).answer());
        assertEquals(1, split.examples().get(1).answer());
    }

    @Test
    void loadNamesTheTaskAfterItsDirectoryAndReadsBothSplits() throws IOException {
        Path taskDir = Files.createDirectories(dir.resolve("my-task"));
        Files.writeString(taskDir.resolve("train.json"), records(record(ARC, "answer1"), record(ARC, "answer2")));
        Files.writeString(taskDir.resolve("test.json"), records(record(ARC, "answer4")));

        Task task = LlmAdaptersDataset.load(taskDir);

        assertEquals("my-task", task.name());
        assertEquals(2, task.train().size());
        assertEquals(1, task.test().size());
        assertEquals(0.25, task.chance());
    }

    // ---- malformed input ---------------------------------------------------------------------------

    @Test
    void malformedJsonNamesFileLineAndColumn() throws IOException {
        Path file = write("bad.json", "[\n  {\"instruction\": \"x\",\n   \"answer\" \"answer1\"}\n]");
        String message = failure(file);
        assertTrue(message.contains(file.toString()), message);
        assertTrue(message.contains("malformed JSON at line 3, column"), message);
    }

    @Test
    void emptyFileAndEmptyArrayAreRejected() throws IOException {
        assertTrue(failure(write("empty.json", "")).contains("expected a JSON array of records, found nothing"));
        assertTrue(failure(write("none.json", "[]")).contains("expected at least one record, found an empty array"));
    }

    @Test
    void topLevelObjectIsRejected() throws IOException {
        String message = failure(write("obj.json", JSON.writeValueAsString(record(ARC, "answer1"))));
        assertTrue(message.contains("expected a JSON array of records, found a JSON object"), message);
    }

    @Test
    void recordThatIsNotAnObjectNamesItsIndex() throws IOException {
        ArrayNode array = JSON.createArrayNode().add(record(ARC, "answer1")).add("just a string");
        String message = failure(write("t.json", array.toString()));
        assertTrue(message.contains("record 1 (0-based): expected a JSON object, found a JSON string"), message);
    }

    @Test
    void missingInstructionNamesRecordAndField() throws IOException {
        ObjectNode broken = record(ARC, "answer1");
        broken.remove("instruction");
        String message = failure(write("t.json", records(record(ARC, "answer1"), broken)));
        assertTrue(message.contains("t.json: record 1 (0-based), field 'instruction': expected a string, "
                + "found nothing (field missing)"), message);
    }

    @Test
    void nonStringAnswerNamesRecordAndField() throws IOException {
        ObjectNode broken = record(ARC, "answer1");
        broken.put("answer", 2);
        String message = failure(write("t.json", records(broken)));
        assertTrue(message.contains("record 0 (0-based), field 'answer': expected a string, found a JSON number 2"),
                message);
    }

    @Test
    void nonEmptyInputIsRejectedRatherThanIgnored() throws IOException {
        ObjectNode withInput = record(ARC, "answer1");
        withInput.put("input", "extra context");
        String message = failure(write("t.json", records(withInput)));
        assertTrue(message.contains("field 'input': expected an empty string"), message);
    }

    @Test
    void missingAnswerFormatLineIsRejected() throws IOException {
        String noFormat = ARC.substring(0, ARC.indexOf("\n\nAnswer format:"));
        String message = failure(write("t.json", records(record(noFormat, "answer1"))));
        assertTrue(message.contains("field 'instruction': expected an 'Answer format: ...' line"), message);
    }

    @ParameterizedTest
    @ValueSource(strings = {"option1/option2", "yes/no", "answer1/answer3", "answer1", ""})
    void unknownAnswerFormatIsRejected(String spec) throws IOException {
        String instruction = "Please choose the correct answer to the question: Q?\n\nAnswer1: a Answer2: b"
                + "\n\nAnswer format: " + spec;
        String message = failure(write("t.json", records(record(instruction, "answer1"))));
        assertTrue(message.contains("field 'instruction': unknown answer format '" + spec + "'"), message);
    }

    @Test
    void answerNotAmongTheChoicesIsRejected() throws IOException {
        String message = failure(write("t.json", records(record(ARC, "answer1"), record(ARC, "answer5"))));
        assertTrue(message.contains("record 1 (0-based), field 'answer': expected one of "
                + "[answer1, answer2, answer3, answer4], found 'answer5'"), message);
    }

    @Test
    void fewerChoicesThanTheFormatLineAnnouncesIsRejected() throws IOException {
        String three = ARC.replace(" Answer4: carbohydrates being digested in the stomach", "");
        String message = failure(write("t.json", records(record(three, "answer1"))));
        assertTrue(message.contains("field 'instruction': the format line announces 4 choices "
                + "[answer1, answer2, answer3, answer4], but the text has AnswerN: markers numbered [1, 2, 3]"), message);
    }

    @Test
    void moreChoicesThanTheFormatLineAnnouncesIsRejected() throws IOException {
        String five = ARC.replace("stomach\n\n", "stomach Answer5: sunlight\n\n");
        String message = failure(write("t.json", records(record(five, "answer1"))));
        assertTrue(message.contains("but the text has AnswerN: markers numbered [1, 2, 3, 4, 5]"), message);
    }

    @Test
    void emptyChoiceIsRejected() throws IOException {
        String empty = "Please choose the correct answer to the question: Q?\n\nAnswer1: a Answer2: \n\n"
                + "Answer format: answer1/answer2";
        String message = failure(write("t.json", records(record(empty, "answer1"))));
        assertTrue(message.contains("expected text after Answer2:, found none"), message);
    }

    @Test
    void unexpectedPreambleIsRejected() throws IOException {
        String other = PIQA.replace("correct solution", "best solution");
        String message = failure(write("t.json", records(record(other, "solution1"))));
        assertTrue(message.contains("expected the text to start with 'Please choose the correct solution to the "
                + "question:'"), message);
    }

    @Test
    void mixedFormatsInOneFileAreRejected() throws IOException {
        String message = failure(write("t.json", records(record(ARC, "answer1"), record(BOOLQ, "true"))));
        assertTrue(message.contains("record 1 (0-based), field 'instruction': answer format 'true/false' is "
                + "CLASSIFICATION, but record 0 is MULTIPLE_CHOICE"), message);
    }

    @Test
    void loadRequiresTestJson() throws IOException {
        Path taskDir = Files.createDirectories(dir.resolve("only-train"));
        Files.writeString(taskDir.resolve("train.json"), records(record(ARC, "answer1")));
        DatasetFormatException e = assertThrows(DatasetFormatException.class, () -> LlmAdaptersDataset.load(taskDir));
        assertTrue(e.getMessage().contains("only-train: expected a test.json"), e.getMessage());
    }

    @Test
    void loadRejectsTrainAndTestOfDifferentFormats() throws IOException {
        Path taskDir = Files.createDirectories(dir.resolve("mixed"));
        Files.writeString(taskDir.resolve("train.json"), records(record(BOOLQ, "true")));
        Files.writeString(taskDir.resolve("test.json"), records(record(ARC, "answer1")));
        DatasetFormatException e = assertThrows(DatasetFormatException.class, () -> LlmAdaptersDataset.load(taskDir));
        assertTrue(e.getMessage().contains("train.json: format CLASSIFICATION [true, false] differs from"),
                e.getMessage());
    }

    @Test
    void sharedDataPropertyWinsAndMustNameADirectory() {
        String before = System.getProperty(SharedData.PROPERTY);
        try {
            System.setProperty(SharedData.PROPERTY, dir.toString());
            assertEquals(Optional.of(dir.toAbsolutePath().normalize()), SharedData.root());
            System.setProperty(SharedData.PROPERTY, dir.resolve("absent").toString());
            assertThrows(IllegalStateException.class, SharedData::root);
        } finally {
            if (before == null) {
                System.clearProperty(SharedData.PROPERTY);
            } else {
                System.setProperty(SharedData.PROPERTY, before);
            }
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------

    private static Path realTaskDir(String name) {
        Path taskDir = SharedData.root().map(r -> r.resolve("llm-adapters/dataset/" + name)).orElse(null);
        assumeTrue(taskDir != null && Files.isDirectory(taskDir), "no shared data for " + name);
        return taskDir;
    }

    private static int arrayLength(Path file) throws IOException {
        return JSON.readTree(file.toFile()).size();
    }

    private static ObjectNode record(String instruction, String answer) {
        ObjectNode node = JSON.createObjectNode();
        node.put("instruction", instruction);
        node.put("input", "");
        node.put("output", "the correct answer is " + answer);
        node.put("answer", answer);
        return node;
    }

    private static String records(ObjectNode... records) {
        ArrayNode array = JSON.createArrayNode();
        for (ObjectNode record : records) {
            array.add(record);
        }
        return array.toPrettyString();
    }

    private Path write(String name, String content) throws IOException {
        return Files.writeString(dir.resolve(name), content);
    }

    private static String failure(Path file) {
        DatasetFormatException e = assertThrows(DatasetFormatException.class, () -> LlmAdaptersDataset.readFile(file));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        return e.getMessage();
    }
}
