package dev.moelora.cluster.cli;

import static dev.moelora.cluster.cli.DecoderCommandsTest.moelora;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.tensorboard.PythonScript;
import dev.moelora.model.train.AdapterStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Our files against Hugging Face's own code (cluster/src/test/python/peft_compat.py): PEFT's
 * {@code PeftModel.from_pretrained} on our LoRA adapters — the golden one and one {@code train}
 * wrote — gives our logits; {@code transformers} loads the checkpoint {@code merge} wrote and gives
 * the logits of PEFT's own {@code merge_and_unload()}; and our loader reads an adapter PEFT itself
 * saved ({@code save_pretrained}) with PEFT's logits. All within 1e-4 of the largest logit, float32,
 * on the tiny golden checkpoint. Optional: it needs a Python with transformers and peft, named by
 * MOELORA_PEFT_PYTHON or -Dmoelora.peft.python; without one it is skipped, saying why.
 */
@Timeout(value = 5, unit = java.util.concurrent.TimeUnit.MINUTES)
class PeftCompatibilityTest {
    static final Path LLAMA = Path.of("../model/src/test/resources/llama/gqa-f32");
    static final Duration TIMEOUT = Duration.ofSeconds(240);
    static final String IDS = "1,5,9,22,31,7,3,14";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static String python;

    @TempDir
    Path dir;

    @BeforeAll
    static void findPythonWithPeft() throws Exception {
        python = System.getProperty("moelora.peft.python", System.getenv("MOELORA_PEFT_PYTHON"));
        assumeTrue(python != null && !python.isBlank(), "MOELORA_PEFT_PYTHON (or -Dmoelora.peft.python) is unset: PEFT and transformers are not tried");
        PythonScript.Result r;
        try {
            r = PythonScript.run(List.of(python, "-c", "import peft, transformers, torch"), TIMEOUT);
        } catch (IOException e) {
            assumeTrue(false, "MOELORA_PEFT_PYTHON: " + e.getMessage());
            return;
        }
        String[] said = r.stderr().strip().split("\n");
        assumeTrue(r.exit() == 0, python + " (MOELORA_PEFT_PYTHON) cannot import peft, transformers and torch: " + said[said.length - 1]);
    }

    private static INDArray matrix(JsonNode rows) {
        double[][] d = new double[rows.size()][];
        for (int i = 0; i < rows.size(); i++) {
            d[i] = new double[rows.get(i).size()];
            for (int j = 0; j < d[i].length; j++) d[i][j] = rows.get(i).get(j).asDouble();
        }
        return Nd4j.create(d).castTo(DataType.DOUBLE);
    }

    private static INDArray forward(String... args) throws Exception {
        return AdapterCommandsTest.forward(args);
    }

    private static void assertClose(INDArray reference, INDArray ours, String what) {
        double error = ours.sub(reference).amaxNumber().doubleValue() / reference.amaxNumber().doubleValue();
        assertTrue(error < 1e-4, what + ": relative error " + error);
    }

    private static double difference(INDArray a, INDArray b) {
        return a.sub(b).amaxNumber().doubleValue() / b.amaxNumber().doubleValue();
    }

    /** A LoRA adapter as train writes it (PEFT's fields in adapter_config.json), from a few large steps. */
    private Path trainedLora(Path model) throws Exception {
        Path train = EvaluateCommandTest.sums(dir);
        DecoderCommandsTest.Run r = moelora("train", "--set", "model.name=llama", "--set", "model.path=" + model, "--set", "data.source=instructions",
                "--set", "data.instructions.file=" + train, "--set", "data.instructions.max-length=48", "--set", "data.instructions.eval-tasks=[]",
                "--set", "adapter.type=lora", "--set", "adapter.rank=4", "--set", "adapter.alpha=8", "--set", "adapter.targets=[q_proj,v_proj,down_proj]",
                "--set", "train.steps=4", "--set", "train.batch-size=4", "--set", "train.lr=0.05", "--set", "train.warmup-steps=0",
                "--set", "checkpoint.every=0", "--set", "dashboard.port=0", "--set", "run.dir=" + dir.resolve("runs"), "--set", "run.name=lora");
        assertEquals(0, r.exit(), r.err() + r.out());
        return dir.resolve("runs/lora/adapter");
    }

    @Test
    void peftLoadsOurLoraAdaptersTransformersLoadsOurMergeAndWeLoadWhatPeftSaved() throws Exception {
        Path model = Files.createDirectories(dir.resolve("tiny-llama"));
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json"}) Files.copy(LLAMA.resolve(f), model.resolve(f));
        Path golden = LLAMA.resolve("lora"), trained = trainedLora(model), peftSaved = dir.resolve("peft-saved");
        Path mergedGolden = dir.resolve("merged-golden"), mergedTrained = dir.resolve("merged-trained");
        for (Path[] m : new Path[][] {{golden, mergedGolden}, {trained, mergedTrained}}) {
            DecoderCommandsTest.Run r = moelora("merge", "--model", model.toString(), "--adapter", m[0].toString(), "--out", m[1].toString());
            assertEquals(0, r.exit(), r.err());
        }

        List<String> command = new ArrayList<>(List.of(python, PythonScript.SCRIPTS.resolve("peft_compat.py").toString(), "--base", model.toString(),
                "--ids", IDS, "--adapter", "golden=" + golden, "--adapter", "trained=" + trained, "--merged", "merged-golden=" + mergedGolden,
                "--merged", "merged-trained=" + mergedTrained, "--save-peft", peftSaved.toString()));
        PythonScript.Result r = PythonScript.run(command, TIMEOUT);
        assertEquals(0, r.exit(), () -> "peft_compat.py: " + r.describe());
        JsonNode hf = JSON.readTree(r.stdout());

        INDArray base = forward("forward", "--model", model.toString(), "--ids", IDS);
        assertClose(matrix(hf.get("base")), base, "the base model, transformers vs ours");
        for (String name : new String[] {"golden", "trained"}) {
            Path adapter = name.equals("golden") ? golden : trained;
            INDArray ours = forward("forward", "--model", model.toString(), "--adapter", adapter.toString(), "--ids", IDS);
            assertTrue(difference(ours, base) > 1e-3, name + " changes the logits (else the comparison shows nothing): " + difference(ours, base));
            assertClose(matrix(hf.get(name)), ours, name + ": PeftModel.from_pretrained(our adapter) vs our forward --adapter");
            assertClose(matrix(hf.get(name + "/merge_and_unload")), matrix(hf.get("merged-" + name)),
                    name + ": PEFT's merge_and_unload() vs transformers on our merged checkpoint");
            assertClose(matrix(hf.get("merged-" + name)), forward("forward", "--model", dir.resolve("merged-" + name).toString(), "--ids", IDS),
                    name + ": our merged checkpoint, transformers vs ours");
        }

        assertTrue(Files.isRegularFile(peftSaved.resolve(AdapterStore.ADAPTER)), "PEFT saves " + AdapterStore.ADAPTER);
        JsonNode saved = JSON.readTree(peftSaved.resolve(AdapterStore.CONFIG).toFile());
        assertTrue(saved.get("target_modules").isTextual(), "PEFT saved its targets as one regular expression: " + saved.get("target_modules"));
        INDArray ours = forward("forward", "--model", model.toString(), "--adapter", peftSaved.toString(), "--ids", IDS);
        assertTrue(difference(ours, base) > 1e-3, "PEFT's adapter changes the logits");
        assertClose(matrix(hf.get("peft_saved")), ours, "an adapter PEFT saved, PEFT vs our forward --adapter");
    }
}
