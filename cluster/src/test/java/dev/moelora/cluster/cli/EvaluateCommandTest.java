package dev.moelora.cluster.cli;

import static dev.moelora.cluster.cli.DecoderCommandsTest.moelora;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.model.instruct.CommonsenseAnswers;
import dev.moelora.model.instruct.MathAnswers;
import dev.moelora.model.data.AnswerKind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * evaluate on the tiny golden checkpoint under its committed LoRA adapter, over small test files in
 * LLM-Adapters' layout (a math task and a commonsense task, one prompt too long for the model's 64
 * positions): the predictions do not depend on the batch size, each is scored as their scripts
 * score it, and eval.json counts what predictions.jsonl says.
 */
class EvaluateCommandTest {
    static final Path LLAMA = Path.of("../model/src/test/resources/llama/gqa-f32");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;
    Path model, data;

    @BeforeEach
    void checkpointAndTestFiles() throws Exception {
        model = Files.createDirectories(dir.resolve("tiny-llama"));
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json"}) Files.copy(LLAMA.resolve(f), model.resolve(f));
        data = dir.resolve("dataset");
        StringBuilder math = new StringBuilder("[");
        for (int i = 0; i < 7; i++) {
            int a = i % 5 + 1, b = (i * 3) % 4 + 2;
            if (i > 0) math.append(",\n");
            math.append(String.format("{\"instruction\": \"What is %d + %d?\", \"input\": \"\", \"output\": \"\", \"answer\": \"%d\"}", a, b, a + b));
        }
        math.append(",\n{\"instruction\": \"").append("1 + ".repeat(40)).append("1?\", \"answer\": \"41\"}]");
        Files.createDirectories(data.resolve("AddSub"));
        Files.writeString(data.resolve("AddSub/test.json"), math.toString());
        StringBuilder bool = new StringBuilder("[");
        for (int i = 0; i < 5; i++) {
            if (i > 0) bool.append(",\n");
            bool.append(String.format("{\"instruction\": \"Is %d < %d?\\n\\nAnswer format: true/false\", \"input\": \"\", \"output\": \"\", \"answer\": \"%s\"}",
                    i, 5 - i, i < 5 - i ? "true" : "false"));
        }
        Files.createDirectories(data.resolve("boolq"));
        Files.writeString(data.resolve("boolq/test.json"), bool.append("]").toString());
    }

    private DecoderCommandsTest.Run evaluate(int batch, Path out, String... more) {
        List<String> args = new java.util.ArrayList<>(List.of("evaluate", "--model", model.toString(), "--adapter", LLAMA.resolve("lora").toString(),
                "--tasks", "AddSub,boolq", "--data", data.toString(), "--max-new-tokens", "6", "--batch", Integer.toString(batch), "--out", out.toString()));
        args.addAll(List.of(more));
        return moelora(args.toArray(String[]::new));
    }

    @Test
    void predictionsDoNotDependOnTheBatchAndAreScoredAsTheirScriptsScoreThem() throws Exception {
        DecoderCommandsTest.Run one = evaluate(1, dir.resolve("one")), three = evaluate(3, dir.resolve("three"));
        assertEquals(0, one.exit(), one.err() + one.out());
        assertEquals(0, three.exit(), three.err() + three.out());
        List<String> predictions = Files.readAllLines(dir.resolve("one/predictions.jsonl"));
        assertEquals(predictions, Files.readAllLines(dir.resolve("three/predictions.jsonl")), "batches of 1 and of 3");
        assertEquals(8 + 5, predictions.size());

        Map<String, Integer> correct = new HashMap<>();
        int tooLong = 0;
        for (String line : predictions) {
            JsonNode p = JSON.readTree(line);
            String task = p.get("task").asText(), completion = p.get("completion").asText(), gold = p.get("gold").asText();
            boolean right;
            if (p.has("prompt_too_long")) {
                tooLong++;
                right = false;
                assertEquals("", completion);
            } else if (task.equals("AddSub")) {
                right = MathAnswers.correct(AnswerKind.NUMBER, completion, gold);
            } else {
                assertEquals(CommonsenseAnswers.prediction("boolq", completion), p.get("prediction").asText(), line);
                right = p.get("prediction").asText().equals(gold);
            }
            assertEquals(right, p.get("correct").asBoolean(), line);
            if (right) correct.merge(task, 1, Integer::sum);
        }
        assertEquals(1, tooLong, "the 40-term sum does not fit the model's 64 positions");
        JsonNode eval = JSON.readTree(dir.resolve("one/eval.json").toFile());
        assertEquals(2, eval.size());
        for (JsonNode t : eval) {
            assertEquals(correct.getOrDefault(t.get("task").asText(), 0), t.get("correct").asInt(), t.toString());
            assertEquals(t.get("task").asText().equals("AddSub") ? 8 : 5, t.get("examples").asInt());
        }
        assertEquals(1, eval.get(0).get("prompt_too_long").asInt());
        assertTrue(one.out().contains("| boolq | 5 |"), one.out());
        assertTrue(one.out().contains("| **average** | 13 |"), one.out());
        assertEquals(Files.readString(dir.resolve("one/eval.md")), Files.readString(dir.resolve("three/eval.md")));
    }

    /**
     * train scores its test sets with the adapter in memory; evaluate --adapter on the directory it
     * saved must give the same completions, for every family (tl4's frozen random A is
     * rebuilt from the seed the file records).
     */
    @ParameterizedTest
    @ValueSource(strings = {"lora", "tied-lora", "moelora"})
    void evaluateOfTheSavedAdapterRepeatsTheTrainingRunsEvaluation(String family) throws Exception {
        Path train = sums(dir);
        DecoderCommandsTest.Run t = moelora("train", "--set", "model.name=llama", "--set", "model.path=" + model, "--set", "data.source=instructions",
                "--set", "data.instructions.file=" + train, "--set", "data.instructions.max-length=48", "--set", "data.instructions.eval-root=" + data,
                "--set", "data.instructions.eval-tasks=[AddSub]", "--set", "data.instructions.max-new-tokens=6",
                "--set", "adapter.type=" + family, "--set", "adapter.preset=tl4", "--set", "adapter.experts=4", "--set", "adapter.expert-rank=2",
                "--set", "adapter.targets=[q_proj,v_proj,down_proj]", "--set", "train.steps=3", "--set", "train.batch-size=4", "--set", "train.lr=0.05",
                "--set", "train.warmup-steps=0", "--set", "checkpoint.every=0", "--set", "dashboard.port=0",
                "--set", "run.dir=" + dir.resolve("runs"), "--set", "run.name=" + family);
        assertEquals(0, t.exit(), t.err() + t.out());
        Path run = dir.resolve("runs").resolve(family);
        DecoderCommandsTest.Run e = moelora("evaluate", "--model", model.toString(), "--adapter", run.resolve("adapter").toString(), "--tasks", "AddSub",
                "--data", data.toString(), "--max-new-tokens", "6", "--batch", "3", "--out", dir.resolve("again").toString());
        assertEquals(0, e.exit(), e.err() + e.out());
        List<String> during = Files.readAllLines(run.resolve("predictions.jsonl")), after = Files.readAllLines(dir.resolve("again/predictions.jsonl"));
        assertEquals(during.size(), after.size());
        for (int i = 0; i < during.size(); i++) {
            assertEquals(JSON.readTree(during.get(i)).get("completion"), JSON.readTree(after.get(i)).get("completion"), family + ", record " + i);
        }
        assertTrue(e.out().contains(family.equals("tied-lora") ? "Tied-LoRA tl4" : family.equals("lora") ? "LoRA r=8" : "MoELoRA E=4"), e.out());
        DecoderCommandsTest.Run bare = moelora("evaluate", "--model", model.toString(), "--tasks", "AddSub", "--data", data.toString(),
                "--max-new-tokens", "6", "--out", dir.resolve("bare").toString());
        assertEquals(0, bare.exit(), bare.err());
        assertNotEquals(Files.readAllLines(dir.resolve("bare/predictions.jsonl")), after, family + ": the trained adapter changes some completion");
    }

    @Test
    void maxPerTaskCutsEachTaskAndBadTasksAreNamed() throws Exception {
        DecoderCommandsTest.Run r = evaluate(2, dir.resolve("two"), "--max-per-task", "2");
        assertEquals(0, r.exit(), r.err());
        assertEquals(4, Files.readAllLines(dir.resolve("two/predictions.jsonl")).size());

        DecoderCommandsTest.Run unknown = moelora("evaluate", "--model", model.toString(), "--tasks", "siqa", "--data", data.toString());
        assertEquals(2, unknown.exit());
        assertTrue(unknown.err().contains("--tasks: unknown task 'siqa'"), unknown.err());
        DecoderCommandsTest.Run absent = moelora("evaluate", "--model", model.toString(), "--tasks", "piqa", "--data", data.toString());
        assertEquals(2, absent.exit());
        assertTrue(absent.err().contains("no " + data.resolve("piqa/test.json")), absent.err());
    }

    /** dir/train.json: twelve sums as instruction records. */
    static Path sums(Path dir) throws java.io.IOException {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < 12; i++) {
            if (i > 0) sb.append(",\n");
            sb.append(String.format("{\"instruction\": \"What is %d + %d?\", \"input\": \"\", \"output\": \"%d\"}", i % 7, i % 5, i % 7 + i % 5));
        }
        Path train = dir.resolve("train.json");
        Files.writeString(train, sb.append("]").toString());
        return train;
    }
}
