package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.stream.IntStream;

import static dev.moelora.model.tokenizer.BpeTokenizerTest.JSON;
import static dev.moelora.model.tokenizer.BpeTokenizerTest.fromTree;
import static dev.moelora.model.tokenizer.BpeTokenizerTest.resourceTree;
import static dev.moelora.model.tokenizer.BpeTokenizerTest.tokens;
import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tokenizers of current decoder checkpoints against Hugging Face tokenizers 0.23.2 itself: two
 * small tokenizer.json files with Llama 3.1's and Qwen2.5's real pipelines (regex Split + ByteLevel,
 * NFC, their chat special tokens) and variants of them (every Split behaviour, inverted or not,
 * SmolLM2's Digits, the other Unicode normalizers, added-token flags, a tokenizer_config.json), each
 * with the library's ids, pre-tokenizer pieces and decodings for edge-case, dataset and chat-template
 * texts (resources/tokenizer/make_chat_bpe_golden.py). Malformed files are in
 * {@link BpeTokenizerMalformedFileTest}.
 */
class BpeTokenizerChatTest {

    static final String LLAMA3 = "bpe-llama3-tokenizer.json";
    static final String QWEN2 = "bpe-qwen2-tokenizer.json";

    @TempDir
    static Path dir;

    private static Map<String, Variant> variants;

    /** A tokenizer the golden files describe, its cases, and the tokenizer_config.json beside it, if any. */
    record Variant(String name, ObjectNode tokenizerJson, JsonNode config, boolean decodings, List<JsonNode> cases) {
        BpeTokenizer tokenizer() {
            if (config == null) {
                return fromTree(tokenizerJson, name);
            }
            try {
                Path variantDir = Files.createDirectories(dir.resolve(name));
                JSON.writeValue(variantDir.resolve("tokenizer.json").toFile(), tokenizerJson);
                JSON.writeValue(variantDir.resolve(TokenizerConfig.FILE_NAME).toFile(), config);
                return BpeTokenizer.fromJson(variantDir.resolve("tokenizer.json"));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        List<JsonNode> textCases() {
            return cases.stream().filter(c -> c.has("text")).toList();
        }
    }

    @BeforeAll
    static void loadGolden() {
        variants = golden();
    }

    static List<String> variantNames() {
        return new ArrayList<>(golden().keySet());
    }

    static List<String> variantsWithPieces() {
        return golden().values().stream().filter(v -> v.cases().stream().anyMatch(c -> c.has("pieces"))).map(Variant::name).toList();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variantNames")
    void encodesLikeHuggingFaceTokenizers(String name) {
        Variant variant = variants.get(name);
        BpeTokenizer tokenizer = variant.tokenizer();
        for (JsonNode c : variant.textCases()) {
            String text = c.get("text").textValue();
            assertArrayEquals(ints(c.get("ids")), tokenizer.encode(text), () -> name + ": " + quoted(text));
            if (c.has("plain")) {
                assertArrayEquals(ints(c.get("plain")), tokenizer.encode(text, false), () -> name + " without specials: " + quoted(text));
            }
        }
        assertTrue(variant.textCases().size() >= 18, name + " has only " + variant.textCases().size() + " golden inputs");
    }

    /** The pre-tokenizer alone, as the library's pre_tokenize_str gives it (no normalizer, no added tokens): where a regex dialect difference would show first. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("variantsWithPieces")
    void preTokenizesLikeHuggingFaceTokenizers(String name) {
        Variant variant = variants.get(name);
        TokenizerJson json = treeJson(variant.tokenizerJson(), name);
        Map<String, Integer> vocab = new HashMap<>();
        json.root.get("model").get("vocab").properties().forEach(e -> vocab.put(e.getKey(), e.getValue().intValue()));
        PreTokenizer preTokenizer = PreTokenizer.read(json, json.root.get("pre_tokenizer"), "pre_tokenizer", vocab);
        for (JsonNode c : variant.textCases()) {
            String text = c.get("text").textValue();
            List<String> expected = new ArrayList<>();
            c.get("pieces").forEach(p -> expected.add(p.textValue()));
            assertEquals(expected, preTokenizer.words(text, true), () -> name + ": " + quoted(text));
        }
    }

    /** The Split variants record no decodings: decoding does not depend on the pre-tokenizer. */
    static List<String> variantsWithDecodings() {
        return golden().values().stream().filter(Variant::decodings).map(Variant::name).toList();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variantsWithDecodings")
    void decodesLikeHuggingFaceTokenizers(String name) {
        Variant variant = variants.get(name);
        BpeTokenizer tokenizer = variant.tokenizer();
        for (JsonNode c : variant.cases()) {
            if (!c.has("text") && !c.has("decodeIds")) {
                continue;
            }
            int[] ids = ints(c.has("text") ? c.get("ids") : c.get("decodeIds"));
            String text = c.has("text") ? c.get("text").textValue() : null;
            String decoded = c.has("decoded") ? c.get("decoded").textValue() : text;
            String skipping = c.has("decodedSkippingSpecial") ? c.get("decodedSkippingSpecial").textValue() : text;
            String label = name + ": " + IntStream.of(ids).boxed().toList();
            assertEquals(decoded, tokenizer.decode(ids), label);
            assertEquals(skipping, tokenizer.decode(ids, true), label + " skipping special tokens");
        }
    }

    /** BOS and EOS as transformers' AutoTokenizer reports them for the directory holding the tokenizer_config.json. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("variantNames")
    void bosAndEosAreTheOnesTransformersReads(String name) {
        Variant variant = variants.get(name);
        for (JsonNode c : variant.cases()) {
            if (c.has("eos")) {
                BpeTokenizer tokenizer = variant.tokenizer();
                assertEquals(optional(c.get("bos")), tokenizer.bosId(), name + " bos");
                assertEquals(optional(c.get("eos")), tokenizer.eosId(), name + " eos");
            }
        }
    }

    @Test
    void llama3ChatTemplateTextEncodesEachHeaderAndTurnEndAsOneId() {
        BpeTokenizer llama = variants.get("llama3").tokenizer();
        String chat = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";

        List<String> tokens = tokens(llama, llama.encode(chat, false));

        assertEquals(List.of("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
                tokens.stream().filter(t -> t.startsWith("<|")).toList());
        assertEquals("<|start_header_id|>", tokens.get(1));
        assertEquals("<|eot_id|>", tokens.get(tokens.size() - 1));
        assertEquals("user\n\nHi", llama.decode(llama.encode(chat, false), true));
    }

    @Test
    void specialTokenAccessorsOfTheLlama3AndQwen2Files() {
        BpeTokenizer llama = variants.get("llama3").tokenizer();
        BpeTokenizer qwen = variants.get("qwen2").tokenizer();
        BpeTokenizer qwenInstruct = variants.get("qwen2-instruct-config").tokenizer();

        assertAll(
                () -> assertEquals(OptionalInt.of(llama.tokenId("<|begin_of_text|>")), llama.bosId()),
                () -> assertEquals(OptionalInt.of(llama.tokenId("<|end_of_text|>")), llama.eosId()),
                () -> assertEquals(ids(llama, "<|end_of_text|>", "<|eot_id|>", "<|eom_id|>"), IntStream.of(llama.endIds()).boxed().toList()),
                () -> assertEquals(OptionalInt.of(qwen.tokenId("<|endoftext|>")), qwen.eosId()),
                () -> assertEquals(ids(qwen, "<|endoftext|>", "<|im_end|>"), IntStream.of(qwen.endIds()).boxed().toList()),
                () -> assertEquals(OptionalInt.empty(), qwenInstruct.bosId()),
                () -> assertEquals(ids(qwen, "<|im_end|>", "<|endoftext|>"), IntStream.of(qwenInstruct.endIds()).boxed().toList()));
    }

    @Test
    void aTokenizerConfigWhoseAddBosTokenContradictsThePostProcessorIsRefused() throws IOException {
        Path variantDir = Files.createDirectories(dir.resolve("contradiction"));
        JSON.writeValue(variantDir.resolve("tokenizer.json").toFile(), resourceTree(LLAMA3));
        Path config = variantDir.resolve(TokenizerConfig.FILE_NAME);
        Files.writeString(config, "{\"bos_token\": \"<|begin_of_text|>\", \"add_bos_token\": false}");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BpeTokenizer.fromJson(variantDir.resolve("tokenizer.json")));

        assertTrue(e.getMessage().startsWith(config + ": field 'add_bos_token' is false while the post_processor of "), e.getMessage());
        assertTrue(e.getMessage().contains("puts [<|begin_of_text|>] before the text; expected the two to agree"), e.getMessage());
    }

    @Test
    void aTokenizerConfigNamingATokenTheFileLacksOrNotAsTextIsRefused() throws IOException {
        Path variantDir = Files.createDirectories(dir.resolve("bad-config"));
        JSON.writeValue(variantDir.resolve("tokenizer.json").toFile(), resourceTree(QWEN2));
        Path config = variantDir.resolve(TokenizerConfig.FILE_NAME);

        Files.writeString(config, "{\"eos_token\": \"<|eot|>\"}");
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> BpeTokenizer.fromJson(variantDir.resolve("tokenizer.json")));
        Files.writeString(config, "{\"eos_token\": 151645}");
        IllegalArgumentException number = assertThrows(IllegalArgumentException.class, () -> BpeTokenizer.fromJson(variantDir.resolve("tokenizer.json")));

        assertTrue(missing.getMessage().startsWith(config + ": field 'eos_token' is \"<|eot|>\"; expected a token "), missing.getMessage());
        assertTrue(number.getMessage().startsWith(config + ": field 'eos_token' is 151645; expected a token string"), number.getMessage());
    }

    // --- golden files ---

    private static List<Integer> ids(BpeTokenizer tokenizer, String... tokens) {
        List<Integer> ids = new ArrayList<>();
        for (String token : tokens) {
            ids.add(tokenizer.tokenId(token));
        }
        return ids;
    }

    private static OptionalInt optional(JsonNode id) {
        return id.isNull() ? OptionalInt.empty() : OptionalInt.of(id.intValue());
    }

    private static TokenizerJson treeJson(ObjectNode tree, String name) {
        try {
            return TokenizerJson.read(new ByteArrayInputStream(JSON.writeValueAsBytes(tree)), name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Variants of both golden files in file order; each is its committed file with the golden line's top-level overrides. */
    private static Map<String, Variant> golden() {
        Map<String, Variant> result = new LinkedHashMap<>();
        for (String file : List.of("bpe-llama3-golden.jsonl", "bpe-qwen2-golden.jsonl")) {
            try (InputStream in = BpeTokenizerChatTest.class.getResourceAsStream("/tokenizer/" + file);
                 BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                    JsonNode c = JSON.readTree(line);
                    String name = c.get("variant").textValue();
                    if (c.has("file")) {
                        ObjectNode tree = resourceTree(c.get("file").textValue());
                        c.get("overrides").properties().forEach(e -> tree.set(e.getKey(), e.getValue()));
                        result.put(name, new Variant(name, tree, c.get("config"), !c.has("decodings"), new ArrayList<>()));
                    } else {
                        result.get(name).cases().add(c);
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return result;
    }

    private static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).intValue();
        }
        return values;
    }

    private static String quoted(String text) {
        return JSON.getNodeFactory().textNode(text).toString();
    }
}
