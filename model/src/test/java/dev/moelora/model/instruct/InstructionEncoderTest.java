package dev.moelora.model.instruct;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.data.Instruction;
import dev.moelora.model.llama.DecoderBatch;
import dev.moelora.model.tokenizer.BpeTokenizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The template, tokenization with BOS/EOS, truncation, loss masks and length grouping. */
class InstructionEncoderTest {
    /** The tiny golden LLaMA checkpoint with its 48-token tokenizer.json fixture. */
    static Path tinyModel() throws Exception {
        return Path.of(InstructionEncoderTest.class.getResource("/llama/gqa-f32/tokenizer.json").toURI()).getParent();
    }

    static BpeTokenizer tinyTokenizer() throws Exception {
        return BpeTokenizer.fromJson(tinyModel().resolve("tokenizer.json"));
    }

    @Test
    void promptIsAlpacaWordingWithTheInputSectionOnlyForANonEmptyInput() {
        assertEquals("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
                + "### Instruction:\nAdd 2 and 3.\n\n### Response:\n", PromptTemplate.prompt("Add 2 and 3.", ""));
        assertEquals("Below is an instruction that describes a task, paired with an input that provides further context. "
                + "Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate.\n\n### Input:\nbonjour\n\n"
                + "### Response:\nhello", PromptTemplate.full(new Instruction("Translate.", "bonjour", "hello", "")));
    }

    @Test
    void sequencesStartWithBosEndWithEosAndTargetOnlyTheResponse() throws Exception {
        BpeTokenizer tok = tinyTokenizer();
        Instruction r = new Instruction("What is 3 + 4?", "", "7", "7");
        TokenizedInstruction t = InstructionEncoder.encode(List.of(r), tok, 64).sequences().get(0);
        int[] prompt = tok.encode(PromptTemplate.prompt(r), true);
        assertEquals(1, t.ids()[0], "BOS");
        assertEquals(prompt.length, t.promptLength());
        assertArrayEquals(prompt, Arrays.copyOf(t.ids(), prompt.length));
        assertArrayEquals(new int[] {tok.tokenId("7"), 2}, Arrays.copyOfRange(t.ids(), prompt.length, t.length()), "response then EOS");
        assertEquals(2, t.targets());
    }

    @Test
    void truncationCutsTheEndAndThenNoEosIsAddedAndAPromptFillingMaxLengthIsDropped() throws Exception {
        BpeTokenizer tok = tinyTokenizer();
        Instruction r = new Instruction("What is 3 + 4?", "", "7 + 0 = 7", "7");
        int promptLength = tok.encode(PromptTemplate.prompt(r), true).length;
        int fullLength = tok.encode(PromptTemplate.full(r), true).length;
        InstructionEncoder.Encoded fits = InstructionEncoder.encode(List.of(r), tok, fullLength + 1);
        assertEquals(fullLength + 1, fits.sequences().get(0).length(), "EOS fits");
        InstructionEncoder.Encoded exact = InstructionEncoder.encode(List.of(r), tok, fullLength);
        assertEquals(fullLength, exact.sequences().get(0).length(), "no room for EOS: none is added (their len < cutoff_len rule)");
        assertTrue(exact.sequences().get(0).ids()[fullLength - 1] != 2);
        InstructionEncoder.Encoded cut = InstructionEncoder.encode(List.of(r), tok, promptLength + 2);
        assertEquals(1, cut.truncated());
        assertEquals(2, cut.sequences().get(0).targets());
        InstructionEncoder.Encoded none = InstructionEncoder.encode(List.of(r, r), tok, promptLength);
        assertEquals(0, none.sequences().size());
        assertEquals(2, none.dropped());
    }

    @Test
    void batchesPadOnTheRightAndMaskPromptAndPaddingOutOfTheLoss() {
        TokenizedInstruction a = new TokenizedInstruction(new int[] {1, 5, 6, 7, 2}, 3), b = new TokenizedInstruction(new int[] {1, 8, 9}, 2);
        InstructionBatch batch = InstructionBatch.of(List.of(a, b), 0);
        DecoderBatch d = batch.batch();
        assertEquals(2, d.batch());
        assertEquals(5, d.tokens());
        assertArrayEquals(new int[] {1, 5, 6, 7, 2, 1, 8, 9, 0, 0}, d.ids());
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, d.mask());
        assertArrayEquals(new float[] {0, 0, 0, 1, 1, 0, 0, 1, 0, 0}, batch.lossMask());
        assertEquals(8, batch.tokens());
    }

    @Test
    void aSequenceWithoutATargetIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new TokenizedInstruction(new int[] {1, 5}, 2));
    }

    @Test
    void lengthGroupingVisitsEveryExampleOncePerEpochAndSortsEachWindowLongestFirst() {
        int n = 230, batch = 2;
        int[] lengths = new int[n];
        for (int i = 0; i < n; i++) lengths[i] = 3 + (i * 37) % 41;
        InstructionOrder grouped = new InstructionOrder(lengths, 7, true, batch);
        int window = InstructionOrder.WINDOW_BATCHES * batch;
        Set<Integer> seen = new HashSet<>();
        int previous = Integer.MAX_VALUE;
        for (int i = 0; i < n; i++) {
            int e = grouped.nextIndices(1)[0];
            assertTrue(seen.add(e), "example " + e + " twice in one epoch");
            if (i % window != 0) assertTrue(lengths[e] <= previous, "window not sorted at " + i);
            previous = lengths[e];
        }
        assertEquals(0, grouped.epoch());
        grouped.nextIndices(1);
        assertEquals(1, grouped.epoch());
        InstructionOrder resumed = new InstructionOrder(lengths, 7, true, batch);
        resumed.seek(1, 1);
        InstructionOrder straight = new InstructionOrder(lengths, 7, true, batch);
        straight.nextIndices(n + 1);
        assertArrayEquals(straight.nextIndices(5), resumed.nextIndices(5), "a cursor resumes the same order");
    }
}
