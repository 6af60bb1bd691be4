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
        AddedTokens added = read(tree(token(10, "<x>", false), token(11, "<x><y>", false), token(12, "y><z", false)), true, false);

        // "<x><y>" beats "<x>" at offset 1; "y><z" starts inside that match and so never matches.
        assertEquals(List.of("text a@0", "token 11", "text <z>@7"), rawSplit(added, "a<x><y><z>"));
        assertEquals(List.of("token 10", "token 10"), rawSplit(added, "<x><x>"));
        assertEquals(List.of("text plain@0"), rawSplit(added, "plain"));
    }

    @Test
    void normalizedTokensMatchOnlyInNormalizedTextAndRawOnesOnlyInRawText() throws IOException {
        AddedTokens added = read(tree(token(10, "<raw>", false), token(11, "<norm>", true)), true, false);

        assertEquals(List.of("token 10", "text <norm>@5"), rawSplit(added, "<raw><norm>"));
        List<String> normalized = new ArrayList<>();
        added.splitNormalized("<raw><norm>", (text, offset) -> normalized.add("text " + text + "@" + offset), id -> normalized.add("token " + id));
        assertEquals(List.of("text <raw>@0", "token 11"), normalized);
    }

    @Test
    void tokensKeepFileOrderAndTheirSpecialFlag() throws IOException {
        ObjectNode root = tree(token(11, "<b>", false), token(10, "<a>", false));
        ((ObjectNode) root.get("added_tokens").get(1)).put("special", false);

        List<AddedTokens.Token> tokens = read(root, true, false).tokens();

        assertEquals(List.of(new AddedTokens.Token("<b>", 11, true, false), new AddedTokens.Token("<a>", 10, false, false)), tokens);
    }

    @Test
    void aTokenTheModelVocabularyHoldsNeedsItsIdEvenWhenTokensMayExtendIt() throws IOException {
        AddedTokens added = read(tree(token(2, "ab", false), token(7, "<new>", false)), true, false);

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
                rejected("a single_word token", "added_tokens[0].single_word", "is true", true,
                        root -> added(root).add(token(7, "<s>", false).put("single_word", true))),
                rejected("missing added_tokens", "added_tokens", "is missing", true, root -> root.remove("added_tokens")));
    }

    @ParameterizedTest(name = "{0} is rejected naming field {1}")
    @MethodSource("rejectedEntries")
    void aRejectedEntryIsNamedWithItsFieldAndValue(String description, String field, String value, boolean extendsModelVocab,
                                                   Consumer<ObjectNode> addIt) throws IOException {
        ObjectNode root = tree();
        addIt.accept(root);

        assertRejectedNaming(SOURCE, field, value, () -> read(root, extendsModelVocab, false));
    }

    @Test
    void aNormalizedTokenIsRejectedOnlyWhenTheFileHasANormalizer() throws IOException {
        ObjectNode root = tree(token(7, "<s>", true));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> read(root, true, true));

        assertTrue(e.getMessage().contains("field 'added_tokens[0].normalized' is true while the file has a normalizer"), e.getMessage());
        assertEquals(1, read(root, true, false).tokens().size());
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

    private static AddedTokens read(ObjectNode root, boolean extendsModelVocab, boolean hasNormalizer) throws IOException {
        TokenizerJson json = TokenizerJson.read(new ByteArrayInputStream(JSON.writeValueAsBytes(root)), SOURCE);
        return AddedTokens.read(json, MODEL_VOCAB, extendsModelVocab, hasNormalizer);
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
