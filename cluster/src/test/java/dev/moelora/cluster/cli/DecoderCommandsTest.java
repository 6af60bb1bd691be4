package dev.moelora.cluster.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.Main;
import dev.moelora.model.llama.DecoderBatch;
import dev.moelora.model.llama.LlamaCheckpoint;
import dev.moelora.model.llama.LlamaDecoder;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The decoder side of the command line on the tiny golden LLaMA checkpoint (model module's test
 * resources, with its 48-token tokenizer.json): forward prints logits in the encoder's JSON shape
 * contract, generate prints a completion, and train fine-tunes on instructions, saves the adapter
 * and scores math test sets.
 */
public class DecoderCommandsTest {
    static final Path GOLDEN = Path.of("../model/src/test/resources/llama/gqa-f32");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;
    Path model;

    /** What a command printed and its exit code. */
    public record Run(int exit, String out, String err) {}

    public static Run moelora(String... args) {
        PrintStream stdout = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            var cli = Main.commandLine();
            cli.setErr(new PrintWriter(err, true));
            int exit = cli.execute(args);
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString());
        } finally {
            System.setOut(stdout);
        }
    }

    @BeforeEach
    void copyCheckpoint() throws Exception {
        model = Files.createDirectories(dir.resolve("tiny-llama"));
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json"}) Files.copy(GOLDEN.resolve(f), model.resolve(f));
    }

    @Test
    void forwardPrintsTheDecoderLogitsRowMajorWithTheirShape() throws Exception {
        Run r = moelora("forward", "--model", model.toString(), "--ids", "1,5,9,22");
        assertEquals(0, r.exit(), r.err());
        JsonNode json = JSON.readTree(r.out());
        assertEquals("[4,48]", json.get("shape").toString());
        LlamaDecoder decoder = LlamaCheckpoint.load(model, DataType.FLOAT);
        INDArray logits = decoder.forward(new DecoderBatch(1, 4, new int[] {1, 5, 9, 22}, new float[] {1, 1, 1, 1}));
        assertEquals(4 * 48, json.get("data").size());
        for (int i = 0; i < 4 * 48; i++) assertEquals(logits.getFloat(i / 48, i % 48), json.get("data").get(i).floatValue(), 0f);

        Run text = moelora("forward", "--model", model.toString(), "--text", "3+4");
        assertEquals(0, text.exit(), text.err());
        assertEquals("[5,48]", JSON.readTree(text.out()).get("shape").toString(), "BOS, <unk> (the ▁ the normalizer prepends), 3, +, 4");
    }

    @Test
    void forwardKeepsTheEncoderPath() throws Exception {
        Run r = moelora("forward", "--ids", "101,7592,102");
        assertEquals(0, r.exit(), r.err());
        assertEquals("[3,384]", JSON.readTree(r.out()).get("shape").toString());
    }

    @Test
    void generatePrintsTheCompletionAndNamesAMissingTokenizer() throws Exception {
        Run greedy = moelora("generate", "--model", model.toString(), "--prompt", "What is 3 + 4?", "--instruction", "--max-new-tokens", "6");
        assertEquals(0, greedy.exit(), greedy.err());
        assertEquals(greedy.out(), moelora("generate", "--model", model.toString(), "--prompt", "What is 3 + 4?", "--instruction",
                "--max-new-tokens", "6").out(), "greedy is deterministic");
        Run sampled = moelora("generate", "--model", model.toString(), "--prompt", "1+1=", "--temperature", "0.8", "--top-k", "10",
                "--top-p", "0.9", "--seed", "3", "--max-new-tokens", "5");
        assertEquals(0, sampled.exit(), sampled.err());

        Files.delete(model.resolve("tokenizer.json"));
        Run missing = moelora("generate", "--model", model.toString(), "--prompt", "hi");
        assertEquals(2, missing.exit());
        assertTrue(missing.err().contains(model + ": no tokenizer.json"), missing.err());
    }

    /** Sums of two digits in LLM-Adapters' JSON, answers as math_data.json writes them. */
    private Path instructions(String name, int n, int offset) throws Exception {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < n; i++) {
            int a = (i + offset) % 7 + 1, b = ((i + offset) * 3) % 5 + 2;
            if (i > 0) sb.append(",\n");
            sb.append(String.format("{\"instruction\": \"What is %d + %d?\", \"input\": \"\", \"output\": \"%d + %d = %d\", \"answer\": \"%d.0\"}",
                    a, b, a, b, a + b, a + b));
        }
        Path f = dir.resolve(name);
        Files.createDirectories(f.getParent());
        Files.writeString(f, sb.append("]").toString());
        return f;
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "moelora"})
    void trainFineTunesOnInstructionsSavesTheAdapterAndScoresTheTestSets(String adapter) throws Exception {
        Path train = instructions("train.json", 16, 0);
        instructions("eval/Sums/test.json", 3, 20);
        Path gsm = dir.resolve("gsm8k-test.jsonl");
        Files.writeString(gsm, "{\"question\": \"What is 2 + 2?\", \"answer\": \"2 + 2 = 4\\n#### 4\"}\n"
                + "{\"question\": \"What is 1,000 + 1?\", \"answer\": \"#### 1,001\"}\n");
        Run r = moelora("train", "--set", "model.name=llama", "--set", "model.path=" + model, "--set", "data.source=instructions",
                "--set", "data.instructions.file=" + train, "--set", "data.instructions.max-length=48",
                "--set", "data.instructions.eval-root=" + dir.resolve("eval"), "--set", "data.instructions.eval-tasks=[Sums]",
                "--set", "data.instructions.eval-files=[\"" + gsm + "\"]", "--set", "data.instructions.max-new-tokens=6",
                "--set", "adapter.type=" + adapter, "--set", "adapter.targets=[q_proj,v_proj,down_proj]", "--set", "adapter.expert-rank=2",
                "--set", "adapter.experts=4", "--set", "train.steps=4", "--set", "train.batch-size=4", "--set", "train.grad-accum=2",
                "--set", "train.warmup-steps=1", "--set", "checkpoint.every=2", "--set", "run.dir=" + dir.resolve("runs"), "--set", "run.name=" + adapter);
        assertEquals(0, r.exit(), r.err() + r.out());
        Path run = dir.resolve("runs").resolve(adapter);
        List<String> metrics = Files.readAllLines(run.resolve("metrics.jsonl"));
        assertEquals(4, metrics.size());
        for (String line : metrics) assertTrue(Double.isFinite(JSON.readTree(line).get("loss").asDouble()), line);
        assertTrue(Files.size(run.resolve("adapter/adapter_model.safetensors")) > 0);
        JsonNode adapterConfig = JSON.readTree(run.resolve("adapter/adapter_config.json").toFile());
        assertEquals("CAUSAL_LM", adapterConfig.get("task_type").asText());
        assertEquals("step-000004", Files.readString(run.resolve("checkpoints/latest")).trim());
        assertEquals(adapter.equals("moelora"), Files.exists(run.resolve("routing.jsonl")));
        List<String> predictions = Files.readAllLines(run.resolve("predictions.jsonl"));
        assertEquals(5, predictions.size());
        String gsmName = dir.getFileName() + "/gsm8k-test.jsonl";
        // the gold answers as this test wrote them: Sums records 20..22, then GSM8K's numbers after ####
        List<String> gold = new ArrayList<>();
        for (int i = 0; i < 3; i++) gold.add(Integer.toString((i + 20) % 7 + 1 + ((i + 20) * 3) % 5 + 2));
        gold.add("4");
        gold.add("1001");
        java.util.Map<String, Integer> correctByTask = new java.util.HashMap<>();
        for (int i = 0; i < predictions.size(); i++) {
            JsonNode p = JSON.readTree(predictions.get(i));
            assertEquals(i < 3 ? "Sums" : gsmName, p.get("task").asText(), predictions.get(i));
            assertEquals(Double.parseDouble(gold.get(i)), Double.parseDouble(p.get("gold").asText()), 0.0, "gold of " + predictions.get(i));
            // evaluate.py's rule, applied here to what was written: the last number of the completion within 0.001 of gold
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("-?\\d+\\.?\\d*")
                    .matcher(p.get("completion").asText().split("### Response:", -1)[0].replace(",", ""));
            String last = null;
            while (m.find()) last = m.group();
            boolean right = last != null && Math.abs(Double.parseDouble(last) - Double.parseDouble(gold.get(i))) <= 0.001;
            assertEquals(right, p.get("correct").asBoolean(), "scored as evaluate.py would: " + predictions.get(i));
            if (right) correctByTask.merge(p.get("task").asText(), 1, Integer::sum);
        }
        JsonNode eval = JSON.readTree(run.resolve("eval.json").toFile());
        List<String> tasks = new ArrayList<>();
        for (JsonNode t : eval) {
            String task = t.get("task").asText();
            tasks.add(task + ":" + t.get("examples").asInt());
            int correct = correctByTask.getOrDefault(task, 0);
            assertEquals(correct, t.get("correct").asInt(), task + ": the correct predictions of predictions.jsonl");
            assertEquals((double) correct / t.get("examples").asInt(), t.get("accuracy").asDouble(), 1e-12, task);
        }
        assertEquals(List.of("Sums:3", gsmName + ":2"), tasks);
        assertTrue(r.out().contains("| **average** |"), r.out());
    }

    @Test
    void instructionSettingsThatCannotWorkAreRefusedWithTheirKey() {
        Run encoder = moelora("train", "--set", "data.source=instructions");
        assertEquals(2, encoder.exit());
        assertTrue(encoder.err().contains("model.name = llama"), encoder.err());
        Run tooLong = moelora("train", "--set", "model.name=llama", "--set", "model.path=" + model, "--set", "data.source=instructions",
                "--set", "data.instructions.max-length=65");
        assertEquals(2, tooLong.exit());
        assertTrue(tooLong.err().contains("data.instructions.max-length = 65 exceeds the model's 64 positions"), tooLong.err());
        Run noModel = moelora("train", "--set", "model.name=llama", "--set", "data.source=instructions");
        assertEquals(2, noModel.exit());
        assertTrue(noModel.err().contains("model.path"), noModel.err());
    }
}
