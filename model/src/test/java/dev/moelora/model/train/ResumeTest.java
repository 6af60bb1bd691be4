package dev.moelora.model.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.data.GeneratedSuite;
import dev.moelora.model.data.Task;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.optim.LrSchedule;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.task.TaskHeads;
import dev.moelora.model.task.TaskModel;
import dev.moelora.model.tokenizer.WordPieceTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** A run saved at step k and resumed equals the uninterrupted run, bit for bit, dropout included. */
class ResumeTest {
    static final BertConfig TINY = new BertConfig(30522, 16, 2, 2, 32, 64, 2, 1e-12);
    static final List<Task> TASKS = GeneratedSuite.create(3, 24, 4);
    static final TrainConfig CONFIG = new TrainConfig(8, 4, 2, 5e-3, 2, LrSchedule.Decay.LINEAR, 0.01, 1.0, 9, 4);
    static final LoraConfig LORA = new LoraConfig(4, 8, 0.1, List.of("query", "value"));

    @TempDir
    Path dir;

    record Run(Trainer trainer, List<Parameter> params) {}

    static Run fresh() {
        BertEncoder encoder = BertEncoder.random(TINY, DataType.FLOAT, 5);
        var adapters = Lora.adapters(encoder, LORA, 7);
        TaskHeads heads = new TaskHeads(TINY.hidden(), TASKS, DataType.FLOAT, 8);
        TaskModel model = new TaskModel(encoder, adapters, heads, WordPieceTokenizer.minilm(), 32, 4, 4, 2);
        Trainer trainer = new Trainer(model, TASKS, CONFIG);
        return new Run(trainer, trainer.parameters());
    }

    static AdapterStore.State state(Trainer t) {
        return new AdapterStore.State(t.step(), t.sampler().epoch(), t.sampler().position(), "h");
    }

    @Test
    void resumedRunEqualsUninterruptedRun() throws IOException {
        Run straight = fresh();
        straight.trainer().run(CONFIG.steps(), m -> {});

        Run first = fresh();
        first.trainer().run(3, m -> {});
        AdapterStore.save(dir, first.params(), new ObjectMapper().createObjectNode(), first.trainer().optimizer(), state(first.trainer()));
        Run second = fresh();
        AdapterStore.State s = AdapterStore.load(dir, second.params(), second.trainer().optimizer());
        assertEquals(3, s.step());
        second.trainer().resume(s.step());
        second.trainer().sampler().seek(s.epoch(), s.position());
        second.trainer().run(CONFIG.steps(), m -> {});

        for (int i = 0; i < straight.params().size(); i++) {
            Parameter a = straight.params().get(i), b = second.params().get(i);
            assertArrayEquals(a.value().data().asFloat(), b.value().data().asFloat(), a.name());
        }
        assertTrue(straight.params().get(1).value().amaxNumber().doubleValue() > 0, "LoRA B moved away from zero");
    }

    @Test
    void loadingIntoAModelWithOtherTargetsNamesTheMissingTensor() throws IOException {
        Run run = fresh();
        AdapterStore.save(dir, run.params(), new ObjectMapper().createObjectNode(), run.trainer().optimizer(), state(run.trainer()));
        BertEncoder encoder = BertEncoder.random(TINY, DataType.FLOAT, 5);
        var keyAdapters = Lora.apply(encoder, new LoraConfig(4, 8, 0, List.of("key")), 7);
        IOException e = assertThrows(IOException.class, () -> AdapterStore.load(dir, Lora.parameters(keyAdapters), run.trainer().optimizer()));
        assertTrue(e.getMessage().contains("encoder.layer.0.attention.self.key.lora_A"), e.getMessage());
    }
}
