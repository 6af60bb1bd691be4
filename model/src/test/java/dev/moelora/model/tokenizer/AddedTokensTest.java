package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code added_tokens} section both tokenizers read: which entries are accepted, and how text is
 * split around them. Splits follow tokenizers' leftmost-longest matching (its Aho-Corasick
 * {@code MatchKind::LeftmostLongest}).
 */
class AddedTokensTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SOURCE = "added-tokens-test.json";
    private static final Map<String, Integer> MODEL_VOCAB = Map.of("a", 0, "b", 1, "ab", 2);

    @Test
    void theLeftmostMatchWinsAndAtOnePositionTheLongest() throws IOException {
        AddedTokens added = read(tree(token(10, "<x>", false), token(11, "<x><y>", false), token(12, "y><z", false)), true, new Normalizer(List.of()));

        // "<x><y>" beats "<x>" at offset 1; "y><z" starts inside that match and so never matches.
        assertEquals(List.of("text a@0", "token 11", "text <z>@7"), rawSplit(added, "a<x><y><z>"));
        assertEquals(List.of("token 10", "token 10"), rawSplit(added, "<x><x>"));
        assertEquals(List.of("text plain@0"), rawSplit(added, "plain"));
    }

    @Test
    void normalizedTokensMatchOnlyInNormalizedTextAndRawOnesOnlyInRawText() throws IOException {
        AddedTokens added = read(tree(token(10, "<raw>", false), token(11, "<norm>", true)), true, new Normalizer(List.of()));

        assertEquals(List.of("token 10", "text <norm>@5"), rawSplit(added, "<raw><norm>"));
        List<String> normalized = new ArrayList<>();
        added.splitNormalized("<raw><norm>", (text, offset) -> normalized.add("text " + text + "@" + offset), id -> normalized.add("token " + id));
        assertEquals(List.of("text <raw>@0", "token 11"), normalized);
    }

    @Test
    void tokensKeepFileOrderAndTheirSpecialFlag() throws IOException {
        ObjectNode root = tree(token(11, "<b>", false), token(10, "<a>", false));
        ((ObjectNode) root.get("added_tokens").get(1)).put("special", false);

        List<AddedTokens.Token> tokens = read(root, true, new Normalizer(List.of())).tokens();

        assertEquals(List.of(new AddedTokens.Token("<b>", 11, true, false, false, false, false, "<b>"),
                new AddedTokens.Token("<a>", 10, false, false, false, false, false, "<a>")), tokens);
    }

    @Test
    void aTokenTheModelVocabularyHoldsNeedsItsIdEvenWhenTokensMayExtendIt() throws IOException {
        AddedTokens added = read(tree(token(2, "ab", false), token(7, "<new>", false)), true, new Normalizer(List.of()));

        assertEquals(List.of("text x@0", "token 2", "token 7"), rawSplit(added, "xab<new>"));
    }

    static Stream<Arguments> rejectedEntries() {
        return Stream.of(
                rejected("a token outside model.vocab when tokens may not extend it", "added_tokens[0].id", "(absent)", false,
                        root -> added(root).add(token(7, "<new>", false))),
                rejected("an id other than the one model.vocab gives the token", "added_tokens[0].id", "is 0 for \"ab\"", true,
                        root -> added(root).add(token(0, "ab", false))),
                rejected("a repeated token", "added_tokens[1].content", "repeats \"<s>\"", true,
                        root -> added(root).add(token(7, "<s>", false)).add(token(7, "<s>", false))),
                rejected("an empty token", "added_tokens[0].content", "is empty", true,
                        root -> added(root).add(token(7, "", false))),
                rejected("an entry that is not an object", "added_tokens[0]", "is \"<s>\"", true,
                        root -> added(root).add("<s>")),
                rejected("a token without its special flag", "added_tokens[0].special", "is missing", true,
                        root -> added(root).add(token(7, "<s>", false).without(List.of("special")))),
                rejected("a token without its lstrip flag", "added_tokens[0].lstrip", "is missing", true,
                        root -> added(root).add(token(7, "<s>", false).without(List.of("lstrip")))),
                rejected("missing added_tokens", "added_tokens", "is missing", true, root -> root.remove("added_tokens")));
    }

    @ParameterizedTest(name = "{0} is rejected naming field {1}")
    @MethodSource("rejectedEntries")
    void aRejectedEntryIsNamedWithItsFieldAndValue(String description, String field, String value, boolean extendsModelVocab,
                                                   Consumer<ObjectNode> addIt) throws IOException {
        ObjectNode root = tree();
        addIt.accept(root);

        assertRejectedNaming(SOURCE, field, value, () -> read(root, extendsModelVocab, new Normalizer(List.of())));
    }

    /** As tokenizers does when it adds a normalized token: Prepend("▁") makes "</s>" match as "▁</s>" (the SentencePiece goldens' variant shows it end to end). */
    @Test
    void aNormalizedTokenIsMatchedInItsNormalizedForm() throws IOException {
        ObjectNode root = tree(token(7, "</s>", true), token(8, "<raw>", false));
        Normalizer prepend = new Normalizer(List.of(s -> s.isEmpty() ? s : "▁" + s));

        AddedTokens added = read(root, true, prepend);

        assertEquals("▁</s>", added.tokens().get(0).pattern());
        assertEquals("<raw>", added.tokens().get(1).pattern());
        List<String> normalized = new ArrayList<>();
        added.splitNormalized("a▁</s></s>", (text, offset) -> normalized.add("text " + text + "@" + offset), id -> normalized.add("token " + id));
        assertEquals(List.of("text a@0", "token 7", "text </s>@6"), normalized);
    }

    /** WordPiece's reader passes no normalizer: it matches added tokens only in raw text and without flags, so it refuses them. */
    @ParameterizedTest(name = "{0} is refused without a normalizer")
    @MethodSource("flags")
    void aReaderWithoutANormalizerRefusesFlagsItCannotHonour(String flag) throws IOException {
        ObjectNode root = tree(token(7, "<s>", false).put(flag, true));

        assertRejectedNaming(SOURCE, "added_tokens[0]." + flag, "is true", () -> read(root, true, null));
        assertEquals(1, read(root, true, new Normalizer(List.of())).tokens().size());
    }

    static Stream<String> flags() {
        return Stream.of("normalized", "single_word", "lstrip", "rstrip");
    }

    /** Expected splits as tokenizers 0.23.2 (Python) gives them for these tokens (encode().tokens on a byte-level model); BpeTokenizerChatTest checks the flags on real chat tokens. */
    @Test
    void flagsWidenOrDiscardAMatchAsTheReferenceDoes() throws IOException {
        ObjectNode root = tree(token(7, "<l>", false).put("lstrip", true), token(8, "<r>", false).put("rstrip", true),
                token(9, "<w>", false).put("single_word", true), token(10, "w>x", false));
        AddedTokens added = read(root, true, new Normalizer(List.of()));

        assertEquals(List.of("text a@0", "token 7", "text b@7"), rawSplit(added, "a \u00a0 <l>b"));
        assertEquals(List.of("text a@0", "token 8", "text b@7"), rawSplit(added, "a<r> \t\nb"));
        assertEquals(List.of("text x<w>@0"), rawSplit(added, "x<w>"));
        assertEquals(List.of("text é<w> @0"), rawSplit(added, "é<w> "));
        assertEquals(List.of("text - @0", "token 9", "text  -@5"), rawSplit(added, "- <w> -"));
        // Spaces between an rstrip and an lstrip token go with neither twice.
        assertEquals(List.of("token 8", "token 7"), rawSplit(added, "<r>  <l>"));
        // A discarded single_word match is not searched again: "w>x" inside it never matches.
        assertEquals(List.of("text a<w>x@0"), rawSplit(added, "a<w>x"));
        assertEquals(List.of("token 9", "text  @3", "token 10"), rawSplit(added, "<w> w>x"));
    }

    // --- helpers, the first shared with PostProcessorTemplateTest ---

    /** {@code read} fails with a message naming the file, the field, what it holds and what was expected. */
    static void assertRejectedNaming(String source, String field, String value, Executable read) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, read);

        String message = e.getMessage();
        assertTrue(message.startsWith(source + ": field '" + field + "' "), message);
        assertTrue(message.contains(value), message);
        assertTrue(message.contains("; expected "), message);
    }

    private static Arguments rejected(String description, String field, String value, boolean extendsModelVocab, Consumer<ObjectNode> addIt) {
        return Arguments.of(description, field, value, extendsModelVocab, addIt);
    }

    private static AddedTokens read(ObjectNode root, boolean extendsModelVocab, Normalizer normalizer) throws IOException {
        TokenizerJson json = TokenizerJson.read(new ByteArrayInputStream(JSON.writeValueAsBytes(root)), SOURCE);
        return AddedTokens.read(json, MODEL_VOCAB, extendsModelVocab, normalizer);
    }

    private static List<String> rawSplit(AddedTokens added, String input) {
        List<String> parts = new ArrayList<>();
        added.splitRaw(input, (text, offset) -> parts.add("text " + text + "@" + offset), id -> parts.add("token " + id));
        return parts;
    }

    private static ObjectNode tree(ObjectNode... tokens) {
        ObjectNode root = JSON.createObjectNode();
        root.putArray("added_tokens").addAll(List.of(tokens));
        return root;
    }

    private static ArrayNode added(ObjectNode root) {
        return (ArrayNode) root.get("added_tokens");
    }

    /** An added token as tokenizers writes it: every flag present, special. */
    private static ObjectNode token(int id, String content, boolean normalized) {
        return JSON.createObjectNode().put("id", id).put("content", content).put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", normalized).put("special", true);
    }
}
