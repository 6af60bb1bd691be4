package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Expected values come from outside this code: published BERT-uncased vocabulary ids, BERT's own
 * documented examples, tokenizers' truncation unit tests, and a golden file produced by the Hugging
 * Face tokenizers library itself (see resources/tokenizer/make_golden.js).
 */
class WordPieceTokenizerTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static WordPieceTokenizer minilm;

    @TempDir
    Path dir;

    @BeforeAll
    static void loadMinilm() {
        minilm = WordPieceTokenizer.minilm();
    }

    @Test
    void helloWorldEncodesToTheBertUncasedIds() {
        Encoding encoding = minilm.encode("Hello world!", 512);

        assertArrayEquals(new int[] {101, 7592, 2088, 999, 102}, encoding.ids());
        assertArrayEquals(new int[] {0, 0, 0, 0, 0}, encoding.typeIds());
        assertEquals(5, encoding.length());
    }

    @Test
    void specialTokenIdsAndVocabularyAreBertUncased() {
        assertAll(
                () -> assertEquals(30522, minilm.vocabSize()),
                () -> assertEquals(0, minilm.padId()),
                () -> assertEquals(100, minilm.unkId()),
                () -> assertEquals(101, minilm.clsId()),
                () -> assertEquals(102, minilm.sepId()),
                () -> assertEquals(7592, minilm.tokenId("hello")),
                () -> assertEquals("hello", minilm.token(7592)),
                () -> assertEquals(-1, minilm.tokenId("not-a-token")));
    }

    @Test
    void lowercasesAndStripsAccents() {
        assertEquals(List.of("hello"), minilm.tokenize("Héllo"));
        assertEquals(minilm.tokenize("hello"), minilm.tokenize("HÉLLO"));
        assertEquals(List.of("naive", "cafe"), minilm.tokenize("Naïve CAFÉ"));
    }

    @Test
    void splitsEachPunctuationCharIntoItsOwnWord() {
        assertEquals(List.of("don", "'", "t"), minilm.tokenize("don't"));
        assertEquals(List.of("hello", ",", "world", "!", "!"), minilm.tokenize("hello,world!!"));
    }

    @Test
    void spacesCjkIdeographsIntoSingleCharacterWords() {
        assertEquals(List.of("a", "一", "b"), minilm.tokenize("a一b"));
        assertEquals(List.of("中", "文"), minilm.tokenize("中文"));
    }

    @Test
    void dropsControlAndFormatCharsAndMapsWhitespaceToSpaces() {
        assertEquals(List.of("hello"), minilm.tokenize("hel\u0000lo\u0007\u200b"));
        assertEquals(List.of("hello", "world"), minilm.tokenize("hello\u00a0\tworld\n"));
    }

    @Test
    void charactersOutsideTheVocabularyBecomeUnk() {
        assertEquals(-1, minilm.tokenId("😀"));

        assertEquals(List.of("[UNK]"), minilm.tokenize("😀"));
        assertArrayEquals(new int[] {101, 7592, 100, 102}, minilm.encode("hello 😀", 512).ids());
    }

    @Test
    void aWordLongerThanMaxInputCharsPerWordBecomesUnk() {
        assertEquals(List.of("[UNK]"), minilm.tokenize("x".repeat(101)));

        List<String> hundred = minilm.tokenize("x".repeat(100));
        assertFalse(hundred.contains("[UNK]"));
        assertEquals("x".repeat(100), String.join("", hundred).replace("##", ""));
    }

    @Test
    void literalSpecialTokensInTheTextAreMatchedBeforeNormalization() {
        assertArrayEquals(new int[] {101, 7592, 103, 2088, 102}, minilm.encode("hello [MASK] world", 512).ids());
        assertEquals(List.of("[", "mask", "]"), minilm.tokenize("[mask]"));
    }

    @Test
    void greedyLongestMatchSplitsUnaffableAsTheBertPaperDocuments() throws IOException {
        WordPieceTokenizer bert = load(write(config("un", "##aff", "##able", "u", "##a", "##ff")));

        assertEquals(List.of("un", "##aff", "##able"), bert.tokenize("unaffable"));
    }

    @Test
    void aWordWithAnUnmatchableRemainderBecomesASingleUnk() throws IOException {
        WordPieceTokenizer bert = load(write(config("un", "##aff", "##able")));

        assertEquals(List.of("[UNK]"), bert.tokenize("unaffablez"));
    }

    @Test
    void pairEncodingMarksTheSecondSegmentWithTypeIdOne() {
        Encoding encoding = minilm.encodePair("Hello", "world!", 512);

        assertArrayEquals(new int[] {101, 7592, 102, 2088, 999, 102}, encoding.ids());
        assertArrayEquals(new int[] {0, 0, 0, 1, 1, 1}, encoding.typeIds());
    }

    @Test
    void singleTruncationKeepsTheFirstPiecesAndBothSpecials() {
        assertArrayEquals(new int[] {101, 7592, 2088, 102}, minilm.encode("Hello world!", 4).ids());
        assertArrayEquals(new int[] {101, 102}, minilm.encode("Hello world!", 2).ids());
    }

    /** The table of tokenizers' own truncate_encodings_longest_first test (max_length 7, lengths 0, 2, 4, 8). */
    @Test
    void longestFirstMatchesTokenizersTruncationTable() {
        int[] lengths = {0, 2, 4, 8};
        int[][][] expected = {
            {{0, 0}, {0, 2}, {0, 4}, {0, 7}},
            {{2, 0}, {2, 2}, {2, 4}, {2, 5}},
            {{4, 0}, {4, 2}, {3, 4}, {3, 4}},
            {{7, 0}, {5, 2}, {4, 3}, {3, 4}},
        };
        for (int i = 0; i < lengths.length; i++) {
            for (int j = 0; j < lengths.length; j++) {
                assertArrayEquals(expected[i][j], WordPieceTokenizer.longestFirst(lengths[i], lengths[j], 7),
                        "lengths " + lengths[i] + ", " + lengths[j]);
            }
        }
    }

    @Test
    void pairTruncationGivesAnOddBudgetsExtraTokenToTheLongerSequence() {
        // budget 10 - 3 specials = 7 for lengths (6, 4): both are cut, the longer first keeps 4.
        Encoding encoding = minilm.encodePair("a b c d e f", "g h i j", 10);

        assertEquals(List.of("[CLS]", "a", "b", "c", "d", "[SEP]", "g", "h", "i", "[SEP]"), tokens(encoding));
        assertArrayEquals(new int[] {0, 0, 0, 0, 0, 0, 1, 1, 1, 1}, encoding.typeIds());
    }

    @Test
    void maxLengthTooSmallForTheSpecialTokensIsRejected() {
        IllegalArgumentException single = assertThrows(IllegalArgumentException.class, () -> minilm.encode("hi", 1));
        IllegalArgumentException pair = assertThrows(IllegalArgumentException.class, () -> minilm.encodePair("a", "b", 2));

        assertTrue(single.getMessage().contains("post_processor.single"), single.getMessage());
        assertTrue(single.getMessage().contains("all-minilm-l6-v2-tokenizer.json"), single.getMessage());
        assertTrue(pair.getMessage().contains("post_processor.pair"), pair.getMessage());
        assertTrue(pair.getMessage().contains("expected maxLength >= 3"), pair.getMessage());
    }

    /** ~240 inputs (LLM-Adapters test instructions, edge cases, truncated pairs) against Hugging Face tokenizers. */
    @Test
    void matchesHuggingFaceTokenizersOnGoldenInputs() throws IOException {
        List<JsonNode> cases = golden();
        assertTrue(cases.size() > 200, "golden file has " + cases.size() + " cases");
        for (JsonNode c : cases) {
            int maxLength = c.get("maxLength").intValue();
            if (c.has("text")) {
                String text = c.get("text").textValue();
                assertArrayEquals(ints(c.get("ids")), minilm.encode(text, maxLength).ids(), text);
            } else {
                String first = c.get("first").textValue();
                String second = c.get("second").textValue();
                Encoding encoding = minilm.encodePair(first, second, maxLength);
                String label = first + " | " + second + " @" + maxLength;
                assertArrayEquals(ints(c.get("ids")), encoding.ids(), label);
                assertArrayEquals(ints(c.get("typeIds")), encoding.typeIds(), label);
            }
        }
    }

    @Test
    void aMinimalValidConfigLoads() throws IOException {
        WordPieceTokenizer tiny = load(write(config("hello")));

        assertArrayEquals(new int[] {2, 4, 3}, tiny.encode("Hello", 16).ids());
    }

    static Stream<Arguments> malformedConfigs() {
        return Stream.of(
                malformed("missing model", "model", root -> root.remove("model")),
                malformed("missing vocab", "model.vocab", root -> model(root).remove("vocab")),
                malformed("BPE model", "model.type", root -> model(root).put("type", "BPE")),
                malformed("vocab without [CLS]", "model.vocab", root -> {
                    ObjectNode vocab = (ObjectNode) model(root).get("vocab");
                    vocab.remove("[CLS]");
                    vocab.put("renumbered", 2);
                }),
                malformed("duplicate vocab id", "model.vocab.hello", root -> ((ObjectNode) model(root).get("vocab")).put("hello", 0)),
                malformed("Sequence normalizer", "normalizer.type",
                        root -> ((ObjectNode) root.get("normalizer")).put("type", "Sequence")),
                malformed("missing lowercase flag", "normalizer.lowercase",
                        root -> ((ObjectNode) root.get("normalizer")).remove("lowercase")),
                malformed("Whitespace pre-tokenizer", "pre_tokenizer.type",
                        root -> ((ObjectNode) root.get("pre_tokenizer")).put("type", "Whitespace")),
                malformed("lstrip added token", "added_tokens[0].lstrip",
                        root -> ((ObjectNode) root.get("added_tokens").get(0)).put("lstrip", true)),
                malformed("RobertaProcessing", "post_processor.type",
                        root -> ((ObjectNode) root.get("post_processor")).put("type", "RobertaProcessing")),
                malformed("pair template without B", "post_processor.pair",
                        root -> ((ArrayNode) root.get("post_processor").get("pair")).remove(3)));
    }

    @ParameterizedTest(name = "{0} is rejected naming the file and field {1}")
    @MethodSource("malformedConfigs")
    void malformedConfigIsRejectedNamingFileFieldAndExpectation(String description, String field, Consumer<ObjectNode> breakIt)
            throws IOException {
        ObjectNode root = config("hello");
        breakIt.accept(root);
        Path file = write(root);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(file));

        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("'" + field + "'"), e.getMessage());
        assertTrue(e.getMessage().contains("expected"), e.getMessage());
    }

    @Test
    void invalidJsonIsRejectedNamingTheFile() throws IOException {
        Path file = dir.resolve("broken.json");
        Files.writeString(file, "{\"model\": {\"type\": \"WordPiece\",");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> load(file));

        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void aMissingFileIsReportedByName() {
        Path file = dir.resolve("absent.json");

        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> load(file));

        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    // --- helpers ---

    private static Arguments malformed(String description, String field, Consumer<ObjectNode> breakIt) {
        return Arguments.of(description, field, breakIt);
    }

    private static ObjectNode model(ObjectNode root) {
        return (ObjectNode) root.get("model");
    }

    /** A BERT-style tokenizer.json with ids [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3, then {@code tokens} from 4 on. */
    private static ObjectNode config(String... tokens) throws IOException {
        ObjectNode root = (ObjectNode) JSON.readTree("""
                {
                  "added_tokens": [
                    {"id": 0, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
                    {"id": 1, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
                  ],
                  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                                 "strip_accents": null, "lowercase": true},
                  "pre_tokenizer": {"type": "BertPreTokenizer"},
                  "post_processor": {
                    "type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                               {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                             {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                             {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                    "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                       "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
                  },
                  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                            "max_input_chars_per_word": 100, "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}}
                }
                """);
        ObjectNode vocab = (ObjectNode) root.get("model").get("vocab");
        for (String token : tokens) {
            vocab.put(token, vocab.size());
        }
        return root;
    }

    private Path write(ObjectNode root) throws IOException {
        Path file = Files.createTempFile(dir, "tokenizer", ".json");
        JSON.writeValue(file.toFile(), root);
        return file;
    }

    private static WordPieceTokenizer load(Path file) {
        return WordPieceTokenizer.fromJson(file);
    }

    private static List<String> tokens(Encoding encoding) {
        List<String> tokens = new ArrayList<>();
        for (int id : encoding.ids()) {
            tokens.add(minilm.token(id));
        }
        return tokens;
    }

    private static List<JsonNode> golden() throws IOException {
        List<JsonNode> cases = new ArrayList<>();
        try (InputStream in = WordPieceTokenizerTest.class.getResourceAsStream("/tokenizer/minilm-golden.jsonl");
             BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                cases.add(JSON.readTree(line));
            }
        }
        return cases;
    }

    private static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).intValue();
        }
        return values;
    }
}
