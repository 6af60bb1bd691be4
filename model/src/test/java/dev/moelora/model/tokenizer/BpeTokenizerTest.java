package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Expected ids and texts come from the Hugging Face tokenizers library itself: two small BPE
 * tokenizer.json files (LLaMA-style SentencePiece BPE with byte fallback, GPT-2-style byte-level BPE)
 * and variants of them, each with the library's ids and decodings for a few hundred inputs (see
 * resources/tokenizer/make_bpe_golden.js). GPT-2's own vocabulary is checked against JTokkit in
 * {@link BpeTokenizerGpt2Test}; malformed files in {@link BpeTokenizerMalformedFileTest}.
 */
class BpeTokenizerTest {

    static final ObjectMapper JSON = new ObjectMapper();
    static final String SENTENCEPIECE = "bpe-sentencepiece-tokenizer.json";
    static final String BYTE_LEVEL = "bpe-bytelevel-tokenizer.json";

    private static Map<String, Variant> variants;
    private static BpeTokenizer llama;
    private static BpeTokenizer gpt2Style;

    /** A tokenizer the golden file describes and the cases it holds for it. */
    record Variant(String name, ObjectNode tokenizerJson, List<JsonNode> cases) {
        BpeTokenizer tokenizer() {
            return fromTree(tokenizerJson, name);
        }
    }

    @BeforeAll
    static void loadGolden() {
        variants = golden();
        llama = fromTree(resourceTree(SENTENCEPIECE), SENTENCEPIECE);
        gpt2Style = fromTree(resourceTree(BYTE_LEVEL), BYTE_LEVEL);
    }

    static List<String> variantNames() {
        return new ArrayList<>(golden().keySet());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variantNames")
    void encodesLikeHuggingFaceTokenizers(String name) {
        Variant variant = variants.get(name);
        BpeTokenizer tokenizer = variant.tokenizer();
        int checked = 0;
        for (JsonNode c : variant.cases()) {
            if (c.has("text")) {
                String text = c.get("text").textValue();
                assertArrayEquals(ints(c.get("ids")), tokenizer.encode(text), () -> name + ": " + quoted(text));
                if (c.has("plain")) {
                    assertArrayEquals(ints(c.get("plain")), tokenizer.encode(text, false), () -> name + " without specials: " + quoted(text));
                }
                checked++;
            }
        }
        assertTrue(checked >= 50, name + " has only " + checked + " golden inputs");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variantNames")
    void decodesLikeHuggingFaceTokenizers(String name) {
        Variant variant = variants.get(name);
        BpeTokenizer tokenizer = variant.tokenizer();
        for (JsonNode c : variant.cases()) {
            int[] ids = ints(c.has("text") ? c.get("ids") : c.get("decodeIds"));
            // The generator leaves out a decoded text that equals the input.
            String text = c.has("text") ? c.get("text").textValue() : null;
            String decoded = c.has("decoded") ? c.get("decoded").textValue() : text;
            String skipping = c.has("decodedSkippingSpecial") ? c.get("decodedSkippingSpecial").textValue() : text;
            String label = name + ": " + ints(ids);
            assertEquals(decoded, tokenizer.decode(ids), label);
            assertEquals(skipping, tokenizer.decode(ids, true), label + " skipping special tokens");
        }
    }

    @Test
    void llamaStyleAddsBosAndSpellsCharactersOutsideTheVocabularyAsUtf8ByteTokens() {
        assertEquals(-1, llama.tokenId("中"));

        int[] ids = llama.encode("中");

        assertEquals(List.of("<s>", "▁", "<0xE4>", "<0xB8>", "<0xAD>"), tokens(llama, ids));
        assertEquals("<s> 中", llama.decode(ids));
        assertEquals("中", llama.decode(ids, true));
    }

    @Test
    void llamaStylePrependsTheMetaSymbolAndSpellsNewlinesAsBytes() {
        assertEquals(List.of("▁", "<0x0A>"), tokens(llama, llama.encode("\n", false)));
        assertEquals(List.of("▁the", "<0x0A>"), tokens(llama, llama.encode("the\n", false)).subList(0, 2));
    }

    @Test
    void specialTokensWrittenInTheTextAreMatchedBeforeTheModelAndNeverSplit() {
        int[] ids = llama.encode("the</s><s>the", false);

        assertEquals(List.of("▁the", "</s>", "<s>", "▁the"), tokens(llama, ids));
        assertArrayEquals(new int[] {gpt2Style.tokenId("<|endoftext|>")}, gpt2Style.encode("<|endoftext|>"));
    }

    @Test
    void encodingWithoutSpecialTokensLeavesOutTheTemplatesBos() {
        assertArrayEquals(new int[] {1}, llama.encode(""));
        assertArrayEquals(new int[0], llama.encode("", false));
        int[] with = llama.encode("the the");
        int[] without = llama.encode("the the", false);

        assertEquals(1, with[0]);
        assertArrayEquals(without, Arrays.copyOfRange(with, 1, with.length));
    }

    @Test
    void specialTokenAccessorsFollowTheTemplateThenConventionalNames() {
        BpeTokenizer withEos = variants.get("sentencepiece-metaspace-always-split-eos").tokenizer();
        int endOfText = gpt2Style.tokenId("<|endoftext|>");

        assertAll(
                () -> assertEquals(OptionalInt.of(1), llama.bosId()),
                () -> assertEquals(OptionalInt.of(2), llama.eosId()),
                () -> assertEquals(OptionalInt.of(0), llama.unkId()),
                () -> assertEquals(OptionalInt.empty(), llama.padId()),
                () -> assertEquals(OptionalInt.of(2), withEos.eosId()),
                () -> assertEquals(OptionalInt.of(endOfText), gpt2Style.bosId()),
                () -> assertEquals(OptionalInt.of(endOfText), gpt2Style.eosId()),
                () -> assertEquals(OptionalInt.empty(), gpt2Style.unkId()),
                () -> assertEquals(endOfText + 1, gpt2Style.vocabSize()),
                () -> assertEquals("<0x0A>", llama.token(13)),
                () -> assertEquals(13, llama.tokenId("<0x0A>")),
                () -> assertEquals(-1, llama.tokenId("not-a-token")));
    }

    @Test
    void paddingSectionNamesThePadToken() {
        ObjectNode tree = resourceTree(SENTENCEPIECE);
        tree.putObject("padding").put("pad_token", "</s>").put("pad_id", 2);

        assertEquals(OptionalInt.of(2), fromTree(tree, "padded").padId());
    }

    @Test
    void mergesWrittenAsStringsOrAsPairsBuildTheSameModel() {
        ObjectNode llamaAsStrings = resourceTree(SENTENCEPIECE);
        ArrayNode pairs = (ArrayNode) llamaAsStrings.get("model").get("merges");
        ArrayNode strings = JSON.createArrayNode();
        pairs.forEach(pair -> strings.add(pair.get(0).textValue() + " " + pair.get(1).textValue()));
        ((ObjectNode) llamaAsStrings.get("model")).set("merges", strings);
        ObjectNode gpt2AsPairs = resourceTree(BYTE_LEVEL);
        ArrayNode asPairs = JSON.createArrayNode();
        gpt2AsPairs.get("model").get("merges").forEach(merge -> {
            String[] parts = merge.textValue().split(" ");
            asPairs.addArray().add(parts[0]).add(parts[1]);
        });
        ((ObjectNode) gpt2AsPairs.get("model")).set("merges", asPairs);
        BpeTokenizer llamaFromStrings = fromTree(llamaAsStrings, "llama merges as strings");
        BpeTokenizer gpt2FromPairs = fromTree(gpt2AsPairs, "byte-level merges as pairs");

        for (String text : goldenTexts()) {
            assertArrayEquals(llama.encode(text), llamaFromStrings.encode(text), text);
            assertArrayEquals(gpt2Style.encode(text), gpt2FromPairs.encode(text), text);
        }
    }

    @Test
    void decodingTheEncodingWithoutSpecialTokensGivesBackTheText() {
        for (String text : goldenTexts()) {
            if (hasUnpairedSurrogate(text)) {
                continue; // it comes back as U+FFFD, as the reference's decodings above show
            }
            // In SentencePiece-style files a literal meta symbol comes back as a space, and the text after
            // a special token gets its own prepended meta symbol, hence a space, as in the reference.
            if (text.indexOf('▁') < 0 && !text.matches("(?s).*(<s>|</s>|<unk>).*")) {
                assertEquals(text, llama.decode(llama.encode(text, false), false), "llama-style: " + quoted(text));
            }
            assertEquals(text, gpt2Style.decode(gpt2Style.encode(text, false), false), "byte-level: " + quoted(text));
        }
    }

    /** Expected tokens as tokenizers 0.23.2 (Node binding) gives them for this file with ignore_merges false and true. */
    @Test
    void ignoreMergesTakesAWholeWordTheVocabularyHoldsInsteadOfMergingIt() throws IOException {
        ObjectNode tree = (ObjectNode) JSON.readTree("""
                {"added_tokens": [], "normalizer": null, "post_processor": null, "decoder": null,
                 "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": true},
                 "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false, "byte_fallback": false,
                           "ignore_merges": false, "merges": ["b c", "a b", "ab c"],
                           "vocab": {"▁": 0, "a": 1, "b": 2, "c": 3, "bc": 4, "ab": 5, "abc": 6, "▁abc": 7}}}
                """);
        BpeTokenizer merging = fromTree(tree, "merging");
        ((ObjectNode) tree.get("model")).put("ignore_merges", true);
        BpeTokenizer ignoring = fromTree(tree, "ignoring merges");

        assertEquals(List.of("▁", "a", "bc", "▁", "a", "bc"), tokens(merging, merging.encode("abc abc")));
        assertEquals(List.of("▁abc", "▁abc"), tokens(ignoring, ignoring.encode("abc abc")));
        assertEquals("▁ a bc ▁ a bc", merging.decode(merging.encode("abc abc")));
    }

    @Test
    void olderMetaspaceWithAddPrefixSpaceMeansPrependAlways() {
        Variant always = variants.get("sentencepiece-metaspace-always-split-eos");
        ObjectNode legacy = always.tokenizerJson().deepCopy();
        legacy.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "▁").put("add_prefix_space", true);
        BpeTokenizer expected = always.tokenizer();
        BpeTokenizer older = fromTree(legacy, "add_prefix_space");

        for (String text : goldenTexts()) {
            assertArrayEquals(expected.encode(text), older.encode(text), text);
        }
    }

    @Test
    void byteLevelAlphabetIsGpt2s() {
        // GPT-2's vocab.json spells space as U+0120 'Ġ', newline as U+010A 'Ċ', byte 0 as U+0100 'Ā', the soft hyphen 0xAD as U+0143 'Ń'.
        assertAll(
                () -> assertEquals('Ġ', ByteLevel.charOf(' ')),
                () -> assertEquals('Ċ', ByteLevel.charOf('\n')),
                () -> assertEquals('Ā', ByteLevel.charOf(0)),
                () -> assertEquals('Ń', ByteLevel.charOf(0xAD)),
                () -> assertEquals('!', ByteLevel.charOf('!')),
                () -> assertEquals('ÿ', ByteLevel.charOf(0xFF)));
    }

    @Test
    void anIdOutsideTheVocabularyIsRejectedOnDecode() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> llama.decode(new int[] {5, llama.vocabSize()}));

        assertTrue(e.getMessage().contains("token id " + llama.vocabSize()), e.getMessage());
        assertTrue(e.getMessage().contains(SENTENCEPIECE), e.getMessage());
    }

    @Test
    void aCharacterTheModelCannotSpellIsAnErrorNotSilentlyDropped() {
        ObjectNode tree = resourceTree(SENTENCEPIECE);
        ObjectNode model = (ObjectNode) tree.get("model");
        model.put("byte_fallback", false);
        model.putNull("unk_token");
        BpeTokenizer noFallback = fromTree(tree, "no fallback");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> noFallback.encode("the 中"));

        assertTrue(e.getMessage().contains("U+4E2D"), e.getMessage());
        assertTrue(e.getMessage().contains("no fallback"), e.getMessage());
    }

    @Test
    void longTextEncodesAsTheConcatenationOfItsLines() {
        // A SentencePiece-style file has no pre-tokenizer, so a whole text is one BPE word; the heap keeps that O(n log n).
        StringBuilder text = new StringBuilder();
        List<String> lines = goldenTexts();
        for (int i = 0; i < 2000; i++) {
            String line = lines.get(i % lines.size());
            if (!hasUnpairedSurrogate(line)) {
                text.append(line.replace("<", "(").replace('▁', '_')).append(' ');
            }
        }
        int[] ids = llama.encode(text.toString(), false);

        assertEquals(text.toString(), llama.decode(ids));
    }

    // --- fixtures shared with the other BPE tests ---

    static ObjectNode resourceTree(String name) {
        try (InputStream in = BpeTokenizerTest.class.getResourceAsStream("/tokenizer/" + name)) {
            if (in == null) {
                throw new IllegalStateException("test resource /tokenizer/" + name + " is missing");
            }
            return (ObjectNode) JSON.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static BpeTokenizer fromTree(JsonNode tree, String name) {
        try {
            return BpeTokenizer.fromStream(new ByteArrayInputStream(JSON.writeValueAsBytes(tree)), name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static List<String> tokens(BpeTokenizer tokenizer, int[] ids) {
        List<String> tokens = new ArrayList<>();
        for (int id : ids) {
            tokens.add(tokenizer.token(id));
        }
        return tokens;
    }

    private static boolean hasUnpairedSurrogate(String text) {
        return text.codePoints().anyMatch(c -> c >= Character.MIN_SURROGATE && c <= Character.MAX_SURROGATE);
    }

    private static List<String> goldenTexts() {
        List<String> texts = new ArrayList<>();
        for (JsonNode c : variants.get("sentencepiece").cases()) {
            if (c.has("text")) {
                texts.add(c.get("text").textValue());
            }
        }
        return texts;
    }

    /** Variants in file order; each is its committed file with the golden line's overrides applied. */
    private static Map<String, Variant> golden() {
        Map<String, Variant> result = new LinkedHashMap<>();
        try (InputStream in = BpeTokenizerTest.class.getResourceAsStream("/tokenizer/bpe-golden.jsonl");
             BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                JsonNode c = JSON.readTree(line);
                String name = c.get("variant").textValue();
                if (c.has("file")) {
                    ObjectNode tree = resourceTree(c.get("file").textValue());
                    c.get("overrides").properties().forEach(e -> override(tree, e.getKey(), e.getValue()));
                    result.put(name, new Variant(name, tree, new ArrayList<>()));
                } else {
                    result.get(name).cases().add(c);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return result;
    }

    /** Replaces the field at a dotted path ("model.byte_fallback"), as the generator does. */
    private static void override(ObjectNode tree, String dottedPath, JsonNode value) {
        String[] parts = dottedPath.split("\\.");
        ObjectNode node = tree;
        for (int i = 0; i < parts.length - 1; i++) {
            node = (ObjectNode) node.get(parts[i]);
        }
        node.set(parts[parts.length - 1], value);
    }

    private static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).intValue();
        }
        return values;
    }

    private static List<Integer> ints(int[] ids) {
        return Arrays.stream(ids).boxed().toList();
    }

    private static String quoted(String text) {
        return JSON.getNodeFactory().textNode(text).toString();
    }
}
