package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.ObjIntConsumer;

/**
 * The {@code added_tokens} section of a Hugging Face {@code tokenizer.json}, and the split of input
 * text around those tokens that comes before the model, as tokenizers' {@code AddedVocabulary} does
 * it: leftmost-longest matches ({@code MatchKind::LeftmostLongest}), {@code normalized: false} tokens
 * in the raw text, {@code normalized: true} ones in the normalized text.
 *
 * <p>It only finds tokens; it must never change the text between them (normalizing and splitting
 * words belong to the tokenizer), and must never match a token the file asks to match differently
 * ({@code single_word}, {@code lstrip}, {@code rstrip}): such a file is rejected, never tokenized
 * with different ids.
 */
final class AddedTokens {

    /**
     * @param normalized matched in the normalized text rather than the raw input
     * @param special left out by decoding that skips special tokens
     */
    record Token(String content, int id, boolean special, boolean normalized) {}

    /** In file order. */
    private final List<Token> tokens;
    private final Matcher raw;
    private final Matcher normalized;

    private AddedTokens(List<Token> tokens) {
        this.tokens = List.copyOf(tokens);
        this.raw = new Matcher(tokens.stream().filter(t -> !t.normalized()).toList());
        this.normalized = new Matcher(tokens.stream().filter(Token::normalized).toList());
    }

    /**
     * Reads the required {@code added_tokens} array. A token's id must be the one {@code modelVocab}
     * gives its content; with {@code extendsModelVocab} a content {@code modelVocab} lacks is a new
     * token (BPE files put specials there), without it every added token must be in {@code modelVocab}.
     * {@code normalized: true} is accepted only when the file has no normalizer: matching in
     * normalized text would otherwise need the normalized form of each token, which is not implemented.
     */
    static AddedTokens read(TokenizerJson json, Map<String, Integer> modelVocab, boolean extendsModelVocab, boolean hasNormalizer) {
        JsonNode array = json.array(json.root, "added_tokens", "added_tokens", "an array of added tokens");
        List<Token> tokens = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < array.size(); i++) {
            String path = "added_tokens[" + i + "]";
            JsonNode token = array.get(i);
            if (!token.isObject()) {
                throw json.fail(path, "is " + TokenizerJson.abbreviate(token), "an added-token object");
            }
            String content = json.text(token, "content", path + ".content");
            // tokenizers skips an empty token; here it would match everywhere, so the file is rejected instead.
            if (content.isEmpty()) {
                throw json.fail(path + ".content", "is empty", "the token's non-empty text");
            }
            int id = json.nonNegativeInt(token, "id", path + ".id");
            Integer vocabId = modelVocab.get(content);
            if (vocabId == null ? !extendsModelVocab : vocabId != id) {
                throw json.fail(path + ".id", "is " + id + " for \"" + content + "\"",
                        "the id model.vocab gives it (" + (vocabId == null ? "absent" : vocabId) + ")");
            }
            // tokenizers never writes a token twice (its added vocabulary is keyed by content); a repeat is a
            // hand edit whose intended id we cannot know.
            if (seen.put(content, id) != null) {
                throw json.fail(path + ".content", "repeats \"" + content + "\"", "each added token once");
            }
            // These flags widen where a token matches (across word boundaries, swallowing spaces); not implemented.
            for (String flag : List.of("single_word", "lstrip", "rstrip")) {
                if (json.bool(token, flag, path + "." + flag)) {
                    throw json.fail(path + "." + flag, "is true", "false (matching " + flag + " added tokens is not implemented)");
                }
            }
            boolean normalized = json.bool(token, "normalized", path + ".normalized");
            if (normalized && hasNormalizer) {
                throw json.fail(path + ".normalized", "is true while the file has a normalizer",
                        "false (matching added tokens in normalized text is implemented only without a normalizer)");
            }
            tokens.add(new Token(content, id, json.bool(token, "special", path + ".special"), normalized));
        }
        return new AddedTokens(tokens);
    }

    /** Every added token, in file order. */
    List<Token> tokens() {
        return tokens;
    }

    /**
     * Splits raw input on its {@code normalized: false} tokens: each non-empty stretch between matches
     * goes to {@code text} with its offset in {@code input}, each match's id to {@code token}, in order.
     */
    void splitRaw(String input, ObjIntConsumer<String> text, IntConsumer token) {
        raw.split(input, text, token);
    }

    /** As {@link #splitRaw}, on normalized text and its {@code normalized: true} tokens. */
    void splitNormalized(String normalizedText, ObjIntConsumer<String> text, IntConsumer token) {
        normalized.split(normalizedText, text, token);
    }

    /** At the first position where any token starts, the longest one wins. */
    private static final class Matcher {

        /** Tokens by first character, longest first. */
        private final Map<Character, List<Token>> byFirstChar = new HashMap<>();

        Matcher(List<Token> tokens) {
            for (Token token : tokens) {
                byFirstChar.computeIfAbsent(token.content().charAt(0), c -> new ArrayList<>()).add(token);
            }
            byFirstChar.values().forEach(list -> list.sort(Comparator.comparingInt((Token t) -> t.content().length()).reversed()));
        }

        void split(String input, ObjIntConsumer<String> text, IntConsumer token) {
            int start = 0;
            int i = 0;
            while (i < input.length()) {
                Token match = matchAt(input, i);
                if (match == null) {
                    i++;
                    continue;
                }
                if (i > start) {
                    text.accept(input.substring(start, i), start);
                }
                token.accept(match.id());
                i += match.content().length();
                start = i;
            }
            if (start < input.length()) {
                text.accept(input.substring(start), start);
            }
        }

        private Token matchAt(String input, int index) {
            List<Token> candidates = byFirstChar.get(input.charAt(index));
            if (candidates != null) {
                for (Token token : candidates) {
                    if (input.startsWith(token.content(), index)) {
                        return token;
                    }
                }
            }
            return null;
        }
    }
}
