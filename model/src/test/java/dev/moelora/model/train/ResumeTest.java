package dev.moelora.model.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.checkpoint.FileDigest;
import dev.moelora.model.checkpoint.StateFile;
import dev.moelora.model.data.GeneratedSuite;
import dev.moelora.model.data.Task;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.optim.LrSchedule;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.task.TaskHeads;
import dev.moelora.model.task.TaskModel;
import dev.moelora.model.tokenizer.WordPieceTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * A run whose state files were written at step k and read into a fresh model equals the
 * uninterrupted run, bit for bit, dropout included: the state files plus (step, data cursor) are
 * all a trainer needs.
 */
class ResumeTest {
    static final BertConfig TINY = new BertConfig(30522, 16, 2, 2, 32, 64, 2, 1e-12);
    static final List<Task> TASKS = GeneratedSuite.create(3, 24, 4);
    static final TrainConfig CONFIG = new TrainConfig(8, 4, 2, 5e-3, 2, LrSchedule.Decay.LINEAR, 0.01, 1.0, 9, 4);
    static final LoraConfig LORA = new LoraConfig(4, 8, 0.1, List.of("query", "value"));
    static final MoeLoraConfig MOELORA = new MoeLoraConfig(4, 2, 1, 8, 0.1, List.of("query", "value"), 0.01, 0.1, 0.5, 8);

    @TempDir
    Path dir;

    record Run(Trainer trainer, List<Parameter> params) {}

    static Run fresh(String family) {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.FLOAT, 5);
        Adapters adapters = family.equals("lora") ? Lora.adapters(encoder, LORA, 7) : MoeLora.apply(encoder, MOELORA, 7);
        TaskHeads heads = new TaskHeads(TINY.hidden(), TASKS, DataType.FLOAT, 8);
        TaskModel model = new TaskModel(encoder, adapters, heads, WordPieceTokenizer.minilm(), 32, 4, 4, 2);
        Trainer trainer = new Trainer(model, TASKS, CONFIG);
        return new Run(trainer, trainer.parameters());
    }

    static int[] bits(Parameter p) {
        float[] f = p.value().dup('c').data().asFloat();
        int[] out = new int[f.length];
        for (int i = 0; i < f.length; i++) out[i] = Float.floatToRawIntBits(f[i]);
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "moelora"})
    void resumedFromStateFilesEqualsUninterruptedRun(String family) throws IOException {
        Run straight = fresh(family);
        straight.trainer().run(CONFIG.steps(), m -> {});

        Run first = fresh(family);
        first.trainer().run(3, m -> {});
        List<FileDigest> files = StateFile.writeAll(dir, first.params(), first.trainer().optimizer());
        int epoch = first.trainer().sampler().epoch(), position = first.trainer().sampler().position();
        assertEquals(family.equals("lora") ? 1 : 1 + MOELORA.experts(), files.size(), "trunk plus one file per expert: " + files);

        Run second = fresh(family);
        assertEquals(3, StateFile.readAll(dir, files, second.params(), second.trainer().optimizer()));
        second.trainer().resume(3);
        second.trainer().sampler().seek(epoch, position);
        second.trainer().run(CONFIG.steps(), m -> {});

        for (int i = 0; i < straight.params().size(); i++) {
            Parameter a = straight.params().get(i), b = second.params().get(i);
            assertEquals(a.name(), b.name());
            assertArrayEquals(bits(a), bits(b), a.name());
        }
        assertTrue(straight.params().stream().filter(p -> p.name().contains("_B")).anyMatch(p -> p.value().amaxNumber().doubleValue() > 0),
                "B moved away from zero: the comparison is not of untrained tensors");
    }

    @Test
    void loadingAnAdapterIntoAModelWithOtherTargetsNamesTheMissingTensor() throws IOException {
        Run run = fresh("lora");
        Map<String, org.nd4j.linalg.api.ndarray.INDArray> tensors = new TreeMap<>();
        for (Parameter p : run.params()) tensors.put(p.name(), p.value());
        AdapterStore.write(dir, tensors, new ObjectMapper().createObjectNode(), 0);
        BertEncoder encoder = BertEncoder.random(TINY, DataType.FLOAT, 5);
        var keyAdapters = Lora.apply(encoder, new LoraConfig(4, 8, 0, List.of("key")), 7);
        IOException e = assertThrows(IOException.class, () -> AdapterStore.load(dir, Lora.parameters(keyAdapters)));
        assertTrue(e.getMessage().contains("base_model.model.encoder.layer.0.attention.self.key.lora_A.weight"), e.getMessage());
    }
}
