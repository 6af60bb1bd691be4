package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.ObjIntConsumer;
import java.util.regex.Pattern;

/**
 * The {@code added_tokens} section of a Hugging Face {@code tokenizer.json}, and the split of input
 * text around those tokens that comes before the model, as tokenizers' {@code AddedVocabulary} does
 * it: leftmost-longest matches ({@code MatchKind::LeftmostLongest}), {@code normalized: false} tokens
 * in the raw text, {@code normalized: true} ones, in their normalized form, in the normalized text;
 * a {@code single_word} token only where no word character touches it, an {@code lstrip} or
 * {@code rstrip} one taking the whitespace before or after it along (so that it never reaches the
 * model), as {@code AddedVocabulary::find_matches} decides, word characters and whitespace in the
 * Unicode sense of Rust's {@code \w} and {@code \s}.
 *
 * <p>It only finds tokens; it must never change the text between them (normalizing and splitting
 * words belong to the tokenizer).
 */
final class AddedTokens {

    /**
     * @param pattern the text matched: the content, or for a {@code normalized} token its normalized form
     * @param normalized matched in the normalized text rather than the raw input
     * @param special left out by decoding that skips special tokens
     */
    record Token(String content, int id, boolean special, boolean normalized, boolean singleWord, boolean lstrip,
                 boolean rstrip, String pattern) {}

    private static final Pattern WORD = Pattern.compile("\\w", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern SPACE = Pattern.compile("\\s", Pattern.UNICODE_CHARACTER_CLASS);

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
     * A {@code normalized: true} token is matched as {@code normalizer} turns its content, as the
     * reference does when it adds the token. A caller that matches added tokens only in raw text and
     * without their flags (WordPiece's) passes a null {@code normalizer}: a token that would need more
     * ({@code normalized}, {@code single_word}, {@code lstrip} or {@code rstrip} true) is then rejected.
     */
    static AddedTokens read(TokenizerJson json, Map<String, Integer> modelVocab, boolean extendsModelVocab, Normalizer normalizer) {
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
            boolean normalized = json.bool(token, "normalized", path + ".normalized");
            if (normalizer == null) {
                for (String flag : List.of("normalized", "single_word", "lstrip", "rstrip")) {
                    if (json.bool(token, flag, path + "." + flag)) {
                        throw json.fail(path + "." + flag, "is true", "false (this tokenizer matches added tokens in the raw text, "
                                + "without single_word, lstrip or rstrip)");
                    }
                }
            }
            String pattern = normalized && normalizer != null ? normalizer.apply(content) : content;
            if (pattern.isEmpty()) {
                throw json.fail(path + ".content", "is \"" + content + "\", which the normalizer makes empty",
                        "a token that is still text once normalized (or normalized: false)");
            }
            tokens.add(new Token(content, id, json.bool(token, "special", path + ".special"), normalized,
                    json.bool(token, "single_word", path + ".single_word"), json.bool(token, "lstrip", path + ".lstrip"),
                    json.bool(token, "rstrip", path + ".rstrip"), pattern));
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

    /**
     * At the first position where any token's pattern starts, the longest one wins; the search goes on
     * after it even when the match is discarded ({@code single_word}) or widened ({@code lstrip},
     * {@code rstrip}), as the reference's iterator over its automaton does.
     */
    private static final class Matcher {

        /** Tokens by the first character of their pattern, longest first. */
        private final Map<Character, List<Token>> byFirstChar = new HashMap<>();

        Matcher(List<Token> tokens) {
            for (Token token : tokens) {
                byFirstChar.computeIfAbsent(token.pattern().charAt(0), c -> new ArrayList<>()).add(token);
            }
            byFirstChar.values().forEach(list -> list.sort(Comparator.comparingInt((Token t) -> t.pattern().length()).reversed()));
        }

        void split(String input, ObjIntConsumer<String> text, IntConsumer token) {
            int startOffset = 0;
            int i = 0;
            while (i < input.length()) {
                Token match = matchAt(input, i);
                if (match == null) {
                    i++;
                    continue;
                }
                int start = i;
                int stop = i + match.pattern().length();
                i = stop;
                if (match.singleWord() && (endsWithWord(input, start) || startsWithWord(input, stop))) {
                    continue;
                }
                if (match.lstrip()) {
                    // Spaces an earlier rstrip match already took are not emitted twice: the text is cut only when startOffset < start.
                    start = whitespaceRunStart(input, start);
                }
                if (match.rstrip()) {
                    stop = whitespaceRunEnd(input, stop);
                }
                if (startOffset < start) {
                    text.accept(input.substring(startOffset, start), startOffset);
                }
                token.accept(match.id());
                startOffset = stop;
            }
            if (startOffset < input.length()) {
                text.accept(input.substring(startOffset), startOffset);
            }
        }

        private Token matchAt(String input, int index) {
            List<Token> candidates = byFirstChar.get(input.charAt(index));
            if (candidates != null) {
                for (Token token : candidates) {
                    if (input.startsWith(token.pattern(), index)) {
                        return token;
                    }
                }
            }
            return null;
        }
    }

    private static boolean endsWithWord(String input, int end) {
        return end > 0 && WORD.matcher(Character.toString(input.codePointBefore(end))).matches();
    }

    private static boolean startsWithWord(String input, int start) {
        return start < input.length() && WORD.matcher(Character.toString(input.codePointAt(start))).matches();
    }

    private static boolean isSpace(int codePoint) {
        return SPACE.matcher(Character.toString(codePoint)).matches();
    }

    /** Where the run of whitespace ending at {@code end} starts. */
    private static int whitespaceRunStart(String input, int end) {
        int start = end;
        while (start > 0 && isSpace(input.codePointBefore(start))) {
            start -= Character.charCount(input.codePointBefore(start));
        }
        return start;
    }

    /** Where the run of whitespace starting at {@code start} ends. */
    private static int whitespaceRunEnd(String input, int start) {
        int end = start;
        while (end < input.length() && isSpace(input.codePointAt(end))) {
            end += Character.charCount(input.codePointAt(end));
        }
        return end;
    }
}
