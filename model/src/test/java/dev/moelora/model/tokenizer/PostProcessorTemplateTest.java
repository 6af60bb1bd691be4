package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static dev.moelora.model.tokenizer.AddedTokensTest.assertRejectedNaming;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The TemplateProcessing templates both tokenizers read. Expected encodings follow tokenizers'
 * {@code apply_template}: pieces in order, a special token's ids and a sequence's ids each under the
 * piece's type id; a special token may stand for several ids (tokenizers' own test uses "[2FR]" for
 * three), and a template adds all of them.
 */
class PostProcessorTemplateTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SOURCE = "template-test.json";
    private static final Map<String, Integer> VOCAB = Map.of("<s>", 1, "</s>", 2, "<sep>", 3, "to", 4, "fr", 5);

    /** {@code <s>:0 $A:0 <sep>:0 $B:1 [to fr]:1 </s>:1}, and {@code <s> [to fr] $A </s>}. */
    private static ObjectNode post() throws IOException {
        return (ObjectNode) JSON.readTree("""
                {"type": "TemplateProcessing",
                 "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"SpecialToken": {"id": "2FR", "type_id": 0}},
                            {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                 "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                          {"SpecialToken": {"id": "<sep>", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                          {"SpecialToken": {"id": "2FR", "type_id": 1}}, {"SpecialToken": {"id": "</s>", "type_id": 1}}],
                 "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                                    "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]},
                                    "<sep>": {"id": "<sep>", "ids": [3], "tokens": ["<sep>"]},
                                    "2FR": {"id": "2FR", "ids": [4, 5], "tokens": ["to", "fr"]}}}
                """);
    }

    @Test
    void aPairTemplatePutsBothSequencesInPlaceWithTheirTypeIds() throws IOException {
        PostProcessorTemplate pair = PostProcessorTemplate.pair(json(post()), post(), PostProcessorTemplateTest::id);

        Encoding encoding = pair.apply(new int[] {10, 11}, new int[] {20});

        assertArrayEquals(new int[] {1, 10, 11, 3, 20, 4, 5, 2}, encoding.ids());
        assertArrayEquals(new int[] {0, 0, 0, 0, 1, 1, 1, 1}, encoding.typeIds());
    }

    @Test
    void aSpecialTokenOfSeveralIdsCountsEachOfThemAgainstTheBudget() throws IOException {
        PostProcessorTemplate single = PostProcessorTemplate.single(json(post()), post(), PostProcessorTemplateTest::id);

        assertEquals(4, single.specialCount());
        assertEquals(6, single.budget(10));
        assertEquals(0, single.budget(4));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> single.budget(3));
        assertTrue(e.getMessage().contains("field 'post_processor.single' of " + SOURCE), e.getMessage());
        assertTrue(e.getMessage().contains("expected maxLength >= 4"), e.getMessage());
    }

    @Test
    void leadingAndTrailingIdsAreTheSpecialsAroundTheSequences() throws IOException {
        PostProcessorTemplate single = PostProcessorTemplate.single(json(post()), post(), PostProcessorTemplateTest::id);
        PostProcessorTemplate pair = PostProcessorTemplate.pair(json(post()), post(), PostProcessorTemplateTest::id);

        assertArrayEquals(new int[] {1, 4, 5}, single.leadingIds());
        assertArrayEquals(new int[] {2}, single.trailingIds());
        assertArrayEquals(new int[] {1}, pair.leadingIds());
        assertArrayEquals(new int[] {4, 5, 2}, pair.trailingIds());
        assertArrayEquals(new int[] {1, 4, 5, 7, 2}, single.apply(new int[] {7}).ids());
    }

    @Test
    void theSequenceOnlyTemplateAddsNothing() {
        PostProcessorTemplate none = PostProcessorTemplate.sequenceOnly(SOURCE);

        assertArrayEquals(new int[] {7, 8}, none.apply(new int[] {7, 8}).ids());
        assertEquals(0, none.specialCount());
        assertArrayEquals(new int[0], none.leadingIds());
        assertArrayEquals(new int[0], none.trailingIds());
    }

    @Test
    void applyingATemplateToTheWrongNumberOfSequencesIsAnError() throws IOException {
        PostProcessorTemplate pair = PostProcessorTemplate.pair(json(post()), post(), PostProcessorTemplateTest::id);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pair.apply(new int[] {7}));

        assertTrue(e.getMessage().contains("'post_processor.pair'"), e.getMessage());
    }

    static Stream<Arguments> malformedTemplates() {
        return Stream.of(
                malformed("sequence B in a single template", "single", "post_processor.single[2].Sequence.id", "is \"B\"",
                        post -> sequence(post, "single", 2).put("id", "B")),
                malformed("sequence A twice", "pair", "post_processor.pair[3].Sequence.id", "is \"A\" a second time",
                        post -> sequence(post, "pair", 3).put("id", "A")),
                malformed("a pair without sequence B", "pair", "post_processor.pair", "has no Sequence piece \"B\"",
                        post -> pieces(post, "pair").remove(3)),
                malformed("a sequence without its type id", "pair", "post_processor.pair[3].Sequence.type_id", "is missing",
                        post -> sequence(post, "pair", 3).remove("type_id")),
                malformed("a special token without its type id", "single", "post_processor.single[0].SpecialToken.type_id", "is missing",
                        post -> ((ObjectNode) pieces(post, "single").get(0).get("SpecialToken")).remove("type_id")),
                malformed("a piece of neither kind", "single", "post_processor.single[1]", "{\"Token\"",
                        post -> pieces(post, "single").set(1, JSON.createObjectNode().put("Token", "<s>"))),
                malformed("a special token missing from special_tokens", "single", "post_processor.special_tokens.2FR", "is missing",
                        post -> ((ObjectNode) post.get("special_tokens")).remove("2FR")),
                malformed("more ids than tokens", "pair", "post_processor.special_tokens.2FR", "[4,5,6]",
                        post -> ((ArrayNode) post.get("special_tokens").get("2FR").get("ids")).add(6)),
                malformed("an id the vocabulary does not give", "single", "post_processor.special_tokens.2FR.ids[1]", "is 6 for \"fr\"",
                        post -> ((ArrayNode) post.get("special_tokens").get("2FR").get("ids")).set(1, 6)),
                malformed("a token the vocabulary lacks", "single", "post_processor.special_tokens.2FR.ids[0]", "(absent)",
                        post -> ((ArrayNode) post.get("special_tokens").get("2FR").get("tokens")).set(0, "two")),
                malformed("missing special_tokens", "pair", "post_processor.special_tokens", "is missing",
                        post -> post.remove("special_tokens")),
                malformed("a template that is not an array", "single", "post_processor.single", "is \"$A\"",
                        post -> post.put("single", "$A")));
    }

    @ParameterizedTest(name = "{0} is rejected naming field {2}")
    @MethodSource("malformedTemplates")
    void aMalformedTemplateIsRejectedNamingItsFieldAndValue(String description, String template, String field, String value,
                                                           Consumer<ObjectNode> breakIt) throws IOException {
        ObjectNode post = post();
        breakIt.accept(post);
        TokenizerJson json = json(post);

        assertRejectedNaming(SOURCE, field, value, () -> read(template, json, post));
    }

    // --- helpers ---

    private static Arguments malformed(String description, String template, String field, String value, Consumer<ObjectNode> breakIt) {
        return Arguments.of(description, template, field, value, breakIt);
    }

    private static PostProcessorTemplate read(String template, TokenizerJson json, ObjectNode post) {
        return template.equals("pair")
                ? PostProcessorTemplate.pair(json, post, PostProcessorTemplateTest::id)
                : PostProcessorTemplate.single(json, post, PostProcessorTemplateTest::id);
    }

    private static int id(String token) {
        return VOCAB.getOrDefault(token, -1);
    }

    /** A file holding {@code post}: the reader only takes its name and failure wording from it. */
    private static TokenizerJson json(ObjectNode post) throws IOException {
        ObjectNode root = JSON.createObjectNode().set("post_processor", post);
        return TokenizerJson.read(new ByteArrayInputStream(JSON.writeValueAsBytes(root)), SOURCE);
    }

    private static ArrayNode pieces(ObjectNode post, String template) {
        return (ArrayNode) post.get(template);
    }

    private static ObjectNode sequence(ObjectNode post, String template, int index) {
        return (ObjectNode) pieces(post, template).get(index).get("Sequence");
    }
}
