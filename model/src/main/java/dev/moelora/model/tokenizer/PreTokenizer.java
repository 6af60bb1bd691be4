package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The {@code pre_tokenizer} section of a BPE {@code tokenizer.json}: cuts normalized text into the
 * words the BPE model sees, as tokenizers' pre-tokenizers do — {@code ByteLevel} (GPT-2),
 * {@code Metaspace} (SentencePiece style), {@code Split} (Llama 3, Qwen2), {@code Digits} (SmolLM2)
 * and a {@code Sequence} of them, each step applied to every piece the previous one left, empty
 * pieces dropped in between.
 *
 * <p>It sees text between added tokens, never the added tokens themselves; a file naming any other
 * pre-tokenizer is rejected when read.
 */
sealed interface PreTokenizer {

    /**
     * Text on its way to the model.
     *
     * @param atInputStart whether it begins at offset 0 of the original input (Metaspace's "first" scheme asks)
     */
    record Piece(String text, boolean atInputStart) {}

    List<String> TYPES = List.of("ByteLevel", "Metaspace", "Split", "Digits", "Sequence");

    /** Gives {@code out} the pieces {@code piece} becomes, in order, possibly empty ones. */
    void split(Piece piece, Consumer<Piece> out);

    /** The words of one stretch of normalized text, in order, none empty. */
    default List<String> words(String text, boolean atInputStart) {
        List<String> words = new ArrayList<>();
        split(new Piece(text, atInputStart), p -> {
            if (!p.text().isEmpty()) {
                words.add(p.text());
            }
        });
        return words;
    }

    /** No pre-tokenizer: the whole stretch is one word. */
    record None() implements PreTokenizer {
        @Override
        public void split(Piece piece, Consumer<Piece> out) {
            out.accept(piece);
        }
    }

    /** GPT-2's byte-level step: optional prefix space on each piece, optional GPT-2 regex split, every byte spelled. */
    record ByteLevelStep(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
        @Override
        public void split(Piece piece, Consumer<Piece> out) {
            List<String> words = ByteLevel.words(piece.text(), addPrefixSpace, useRegex);
            for (int i = 0; i < words.size(); i++) {
                out.accept(new Piece(words.get(i), piece.atInputStart() && i == 0));
            }
        }
    }

    record MetaspaceStep(Metaspace metaspace) implements PreTokenizer {
        @Override
        public void split(Piece piece, Consumer<Piece> out) {
            List<String> words = metaspace.words(piece.text(), piece.atInputStart());
            for (int i = 0; i < words.size(); i++) {
                out.accept(new Piece(words.get(i), piece.atInputStart() && i == 0));
            }
        }
    }

    record SplitStep(Split split) implements PreTokenizer {
        @Override
        public void split(Piece piece, Consumer<Piece> out) {
            split.split(piece, out);
        }
    }

    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public void split(Piece piece, Consumer<Piece> out) {
            List<Piece> pieces = List.of(piece);
            for (PreTokenizer step : steps) {
                List<Piece> next = new ArrayList<>();
                for (Piece p : pieces) {
                    step.split(p, q -> {
                        if (!q.text().isEmpty()) {
                            next.add(q);
                        }
                    });
                }
                pieces = next;
            }
            pieces.forEach(out);
        }
    }

    /** Reads the pre-tokenizer at {@code path} ({@code null}: none); a ByteLevel step needs the byte alphabet in {@code vocab}. */
    static PreTokenizer read(TokenizerJson json, JsonNode node, String path, Map<String, Integer> vocab) {
        if (node == null) {
            return new None();
        }
        return switch (json.type(node, path, TYPES)) {
            case "Metaspace" -> new MetaspaceStep(Metaspace.read(json, node, path));
            case "Split" -> new SplitStep(Split.read(json, node, path));
            case "Digits" -> new SplitStep(Split.digits(json, node, path));
            case "Sequence" -> {
                JsonNode list = json.array(node, "pretokenizers", path + ".pretokenizers", "an array of pre-tokenizers");
                List<PreTokenizer> steps = new ArrayList<>();
                for (int i = 0; i < list.size(); i++) {
                    String stepPath = path + ".pretokenizers[" + i + "]";
                    JsonNode step = list.get(i);
                    if (!step.isObject()) {
                        throw json.fail(stepPath, "is " + TokenizerJson.abbreviate(step), "a pre-tokenizer object");
                    }
                    steps.add(read(json, step, stepPath, vocab));
                }
                yield new Sequence(List.copyOf(steps));
            }
            default -> byteLevel(json, node, path, vocab);
        };
    }

    private static PreTokenizer byteLevel(TokenizerJson json, JsonNode node, String path, Map<String, Integer> vocab) {
        boolean addPrefixSpace = json.bool(node, "add_prefix_space", path + ".add_prefix_space");
        boolean useRegex = json.optionalBool(node, "use_regex", path + ".use_regex", true);
        for (int b = 0; b < 256; b++) {
            String character = String.valueOf(ByteLevel.charOf(b));
            if (!vocab.containsKey(character)) {
                throw json.fail("model.vocab", "has no token \"" + character + "\" for byte " + String.format("0x%02X", b)
                        + " although " + path + " is ByteLevel", "all 256 characters of the byte-level alphabet");
            }
        }
        return new ByteLevelStep(addPrefixSpace, useRegex);
    }
}
