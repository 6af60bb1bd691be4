package dev.moelora.cluster.cli;

import static dev.moelora.cluster.cli.DecoderCommandsTest.moelora;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.setup.BaseModel;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.lora.LoraLinear;
import dev.moelora.model.nn.Init;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.safetensors.Safetensors;
import dev.moelora.model.safetensors.SafetensorsFile;
import dev.moelora.model.train.AdapterStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * A trained adapter put to use from the command line, on the tiny golden checkpoints: forward
 * with --adapter equals forward of the checkpoint merge wrote (within 1e-5 relative) and the
 * PyTorch logits of the adapter's files (llama_golden.py, within 1e-4); merge keeps the base's
 * files, tensor names, shapes and dtypes, folds W + ΔW rounded once into the stored dtype, and
 * refuses MoELoRA; generate runs under an adapter; forward puts an encoder adapter on MiniLM.
 */
class AdapterCommandsTest {
    static final Path LLAMA = Path.of("../model/src/test/resources/llama");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** A copy of a golden checkpoint's model files (not its adapters and references). */
    private Path checkpoint(String name) throws Exception {
        Path to = Files.createDirectories(dir.resolve(name));
        try (Stream<Path> s = Files.list(LLAMA.resolve(name))) {
            for (Path p : s.toList()) {
                String f = p.getFileName().toString();
                if (Files.isRegularFile(p) && !f.startsWith("reference") && !f.startsWith("adapter-reference")) Files.copy(p, to.resolve(f));
            }
        }
        return to;
    }

    /** The logits forward printed, as (T, V). */
    static INDArray forward(String... args) throws Exception {
        DecoderCommandsTest.Run r = moelora(args);
        assertEquals(0, r.exit(), r.err());
        JsonNode json = JSON.readTree(r.out());
        int rows = json.get("shape").get(0).asInt(), cols = json.get("shape").get(1).asInt();
        double[] data = new double[rows * cols];
        for (int i = 0; i < data.length; i++) data[i] = json.get("data").get(i).asDouble();
        return Nd4j.create(data, new long[] {rows, cols}, DataType.DOUBLE);
    }

    private static double relativeError(INDArray ours, INDArray reference) {
        return ours.sub(reference).amaxNumber().doubleValue() / reference.amaxNumber().doubleValue();
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "tied-lora-tl6"})
    void forwardWithTheAdapterEqualsForwardOfTheMergedCheckpointAndPyTorch(String adapter) throws Exception {
        Path model = checkpoint("gqa-f32"), merged = dir.resolve("merged-" + adapter), adapterDir = LLAMA.resolve("gqa-f32").resolve(adapter);
        INDArray reference;
        String ids;
        try (SafetensorsFile f = Safetensors.open(LLAMA.resolve("gqa-f32/adapter-reference.safetensors"))) {
            INDArray input = f.read("input_ids");
            ids = Arrays.stream(input.getRow(0).toIntVector()).mapToObj(Integer::toString).collect(Collectors.joining(","));
            reference = f.read("logits." + adapter).castTo(DataType.DOUBLE).get(
                    NDArrayIndex.interval(0, input.size(1)), NDArrayIndex.all());
        }
        INDArray withAdapter = forward("forward", "--model", model.toString(), "--adapter", adapterDir.toString(), "--ids", ids);
        DecoderCommandsTest.Run m = moelora("merge", "--model", model.toString(), "--adapter", adapterDir.toString(), "--out", merged.toString());
        assertEquals(0, m.exit(), m.err());
        assertTrue(m.out().contains("into 14 tensors"), m.out());
        INDArray ofMerged = forward("forward", "--model", merged.toString(), "--ids", ids);
        INDArray base = forward("forward", "--model", model.toString(), "--ids", ids);

        double mergeError = relativeError(ofMerged, withAdapter), pytorchError = relativeError(withAdapter, reference);
        assertTrue(mergeError < 1e-5, adapter + ": merged vs adapter, relative error " + mergeError);
        assertTrue(pytorchError < 1e-4, adapter + ": adapter vs PyTorch, relative error " + pytorchError);
        assertTrue(relativeError(ofMerged, reference) < 1e-4, adapter + ": merged vs PyTorch");
        assertTrue(relativeError(base, reference) > 0.05, adapter + " changes the logits (else the comparison shows nothing)");
        assertEquals(Files.readString(model.resolve("config.json")), Files.readString(merged.resolve("config.json")));
        assertArrayEquals(Files.readAllBytes(model.resolve("tokenizer.json")), Files.readAllBytes(merged.resolve("tokenizer.json")));
    }

    /**
     * Every weight file of the base is written again with the same tensors, shapes, dtypes and
     * metadata; projections are W + s B A computed here from the files and rounded once to the
     * stored dtype; everything else (norms, embeddings, the biases of qwen2-bias) is bit-identical.
     */
    @ParameterizedTest
    @ValueSource(strings = {"tied-bf16", "sharded-f16", "gqa-f32", "qwen2-bias", "llama3-rope"})
    void mergeRewritesEveryWeightFileWithTheFoldedProjectionsInTheBaseDtype(String name) throws Exception {
        Path model = checkpoint(name), merged = dir.resolve(name + "-merged"), adapter = LLAMA.resolve(name).resolve("lora");
        DecoderCommandsTest.Run m = moelora("merge", "--model", model.toString(), "--adapter", adapter.toString(), "--out", merged.toString());
        assertEquals(0, m.exit(), m.err());
        JsonNode config = JSON.readTree(adapter.resolve(AdapterStore.CONFIG).toFile());
        double scale = config.get("lora_alpha").asDouble() / config.get("r").asInt();
        List<String> files;
        try (Stream<Path> s = Files.list(model)) {
            files = s.map(p -> p.getFileName().toString()).sorted().toList();
        }
        try (Stream<Path> s = Files.list(merged)) {
            assertEquals(files, s.map(p -> p.getFileName().toString()).sorted().toList(), "the same files");
        }
        int folded = 0;
        try (SafetensorsFile lora = Safetensors.open(adapter.resolve(AdapterStore.ADAPTER))) {
            for (String f : files) {
                if (!f.endsWith(".safetensors")) {
                    assertArrayEquals(Files.readAllBytes(model.resolve(f)), Files.readAllBytes(merged.resolve(f)), f + " copied");
                    continue;
                }
                try (SafetensorsFile before = Safetensors.open(model.resolve(f)); SafetensorsFile after = Safetensors.open(merged.resolve(f))) {
                    assertEquals(before.metadata(), after.metadata(), f);
                    assertEquals(before.tensors().stream().map(t -> t.name() + " " + t.dtype() + " " + Arrays.toString(t.shape())).toList(),
                            after.tensors().stream().map(t -> t.name() + " " + t.dtype() + " " + Arrays.toString(t.shape())).toList(), f);
                    for (SafetensorsFile.TensorInfo t : before.tensors()) {
                        float[] w = after.readFloat(t.name()).reshape(-1).toFloatVector();
                        String module = t.name().substring(0, t.name().length() - ".weight".length());
                        String a = "base_model.model." + module + ".lora_A.weight";
                        if (lora.tensors().stream().noneMatch(x -> x.name().equals(a))) {
                            assertArrayEquals(before.readFloat(t.name()).reshape(-1).toFloatVector(), w, 0f, t.name() + " unchanged");
                            continue;
                        }
                        INDArray expected = before.read(t.name()).castTo(DataType.DOUBLE).add(lora.read("base_model.model." + module + ".lora_B.weight")
                                .castTo(DataType.DOUBLE).mmul(lora.read(a).castTo(DataType.DOUBLE)).muli(scale)).reshape(-1);
                        float[] rounded = roundedAs(t.dtype(), expected);
                        assertArrayEquals(rounded, w, 0f, t.name() + ": W + s B A rounded once to " + t.dtype());
                        assertFalse(Arrays.equals(before.readFloat(t.name()).reshape(-1).toFloatVector(), w), t.name() + " changed");
                        folded++;
                    }
                }
            }
        }
        assertEquals(14, folded, "every projection of both layers");
    }

    /** Double values rounded to float32, then to F16 or BF16 as the file would store them, read back as floats. */
    private float[] roundedAs(String dtype, INDArray values) throws Exception {
        Path file = dir.resolve("rounded-" + dtype + ".safetensors");
        Safetensors.write(file, Map.of("x", values), Map.of(), Map.of("x", dtype));
        try (SafetensorsFile f = Safetensors.open(file)) {
            return f.readFloat("x").toFloatVector();
        }
    }

    @Test
    void mergeRefusesMoELoRAClearlyAndWritesNothing() throws Exception {
        Path model = checkpoint("gqa-f32"), out = dir.resolve("never");
        DecoderCommandsTest.Run r = moelora("merge", "--model", model.toString(), "--adapter", LLAMA.resolve("gqa-f32/moelora").toString(),
                "--out", out.toString());
        assertEquals(2, r.exit(), r.out());
        assertTrue(r.err().contains("a MoELoRA adapter cannot be merged into the base weights: each token's router picks its own experts"), r.err());
        assertFalse(Files.exists(out));

        Files.createDirectories(out.resolve("something"));
        DecoderCommandsTest.Run full = moelora("merge", "--model", model.toString(), "--adapter", LLAMA.resolve("gqa-f32/lora").toString(),
                "--out", out.toString());
        assertEquals(2, full.exit());
        assertTrue(full.err().contains(out + ": is not empty"), full.err());
    }

    /** An encoder adapter (LoRA on MiniLM's query and value, saved with a task head): forward --adapter gives the adapted hidden states. */
    @Test
    void forwardPutsAnEncoderAdapterOnMiniLmAndLeavesItsTaskHeadsInTheFile() throws Exception {
        BertEncoder encoder = BaseModel.miniLm().encoder();
        List<LoraLinear> modules = Lora.apply(encoder,
                new LoraConfig(4, 8, 0, List.of("query", "value")), 3);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        SplittableRandom random = new SplittableRandom(5);
        for (Parameter p : Lora.parameters(modules)) {
            p.value().assign(Init.normal(random, DataType.FLOAT, 0.2, p.value().shape()));
            tensors.put(p.name(), p.value());
        }
        for (LoraLinear l : modules) l.setTraining(false);
        tensors.put("head.choice.weight", Nd4j.ones(DataType.FLOAT, 384, 1));
        ObjectNode config = JSON.createObjectNode().put("peft_type", "LORA").put("r", 4).put("lora_alpha", 8.0);
        config.putArray("target_modules").add("query").add("value");
        config.putArray("tasks").addObject().put("name", "category");
        Path adapter = dir.resolve("encoder-lora");
        AdapterStore.write(adapter, tensors, config, 0);
        int[] ids = {101, 7592, 2088, 102};
        INDArray expected = encoder.forward(new TokenBatch(1, 4, ids, new int[4], new float[] {1, 1, 1, 1})).castTo(DataType.DOUBLE);
        INDArray bare = forward("forward", "--ids", "101,7592,2088,102");
        INDArray adapted = forward("forward", "--adapter", adapter.toString(), "--ids", "101,7592,2088,102");
        assertTrue(relativeError(adapted, expected) < 1e-6, "relative error " + relativeError(adapted, expected));
        assertTrue(relativeError(bare, expected) > 1e-2, "the adapter changes the hidden states");
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "tied-lora-tl6", "moelora"})
    void generateRunsUnderEachFamilysAdapter(String adapter) throws Exception {
        Path model = checkpoint("gqa-f32");
        String[] base = {"generate", "--model", model.toString(), "--prompt", "3+4=", "--max-new-tokens", "8"};
        DecoderCommandsTest.Run plain = moelora(base);
        assertEquals(0, plain.exit(), plain.err());
        String[] with = Arrays.copyOf(base, base.length + 2);
        with[base.length] = "--adapter";
        with[base.length + 1] = LLAMA.resolve("gqa-f32").resolve(adapter).toString();
        DecoderCommandsTest.Run adapted = moelora(with);
        assertEquals(0, adapted.exit(), adapted.err());
        assertEquals(adapted.out(), moelora(with).out(), "greedy is deterministic");
        assertNotEquals(plain.out(), adapted.out(), "the adapter changes the completion");
    }
}
