package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static dev.moelora.model.tokenizer.BpeTokenizerChatTest.LLAMA3;
import static dev.moelora.model.tokenizer.BpeTokenizerChatTest.QWEN2;
import static dev.moelora.model.tokenizer.BpeTokenizerTest.BYTE_LEVEL;
import static dev.moelora.model.tokenizer.BpeTokenizerTest.JSON;
import static dev.moelora.model.tokenizer.BpeTokenizerTest.SENTENCEPIECE;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every way a BPE tokenizer.json can be wrong or ask for something not implemented is rejected when
 * it is read, with a message naming the file, the JSON path of the field, what it holds and what was
 * expected; each case breaks one thing in an otherwise valid committed file.
 */
class BpeTokenizerMalformedFileTest {

    @TempDir
    Path dir;

    static Stream<Arguments> brokenFiles() {
        return Stream.of(
                broken("missing model", SENTENCEPIECE, "model", "is missing", root -> root.remove("model")),
                broken("WordPiece model", SENTENCEPIECE, "model.type", "\"WordPiece\"", root -> model(root).put("type", "WordPiece")),
                broken("missing vocab", SENTENCEPIECE, "model.vocab", "is missing", root -> model(root).remove("vocab")),
                broken("duplicate vocab id", SENTENCEPIECE, "model.vocab.▁the", "the id of", root -> vocab(root).put("▁the", 1)),
                broken("negative vocab id", SENTENCEPIECE, "model.vocab.▁the", "is -3", root -> vocab(root).put("▁the", -3)),
                broken("vocab id gap", SENTENCEPIECE, "model.vocab", "unused", root -> vocab(root).put("extra", 5000)),
                broken("missing merges", SENTENCEPIECE, "model.merges", "is missing", root -> model(root).remove("merges")),
                broken("merge of a token not in the vocab", SENTENCEPIECE, "model.merges[2]", "\"▁zzz\"",
                        root -> merges(root).set(2, JSON.createArrayNode().add("▁zzz").add("t"))),
                broken("merge making a token not in the vocab", BYTE_LEVEL, "model.merges[0]", "\"qj\"",
                        root -> merges(root).set(0, JSON.getNodeFactory().textNode("q j"))),
                broken("merge string without a space", BYTE_LEVEL, "model.merges[1]", "\"ab\"",
                        root -> merges(root).set(1, JSON.getNodeFactory().textNode("ab"))),
                broken("merge pair of three", SENTENCEPIECE, "model.merges[1]", "[\"a\",\"b\",\"c\"]",
                        root -> merges(root).set(1, JSON.createArrayNode().add("a").add("b").add("c"))),
                broken("repeated merge", SENTENCEPIECE, "model.merges[5]", "repeats merge 0",
                        root -> merges(root).set(5, merges(root).get(0).deepCopy())),
                broken("BPE dropout", SENTENCEPIECE, "model.dropout", "0.1", root -> model(root).put("dropout", 0.1)),
                broken("subword prefix", BYTE_LEVEL, "model.continuing_subword_prefix", "\"##\"",
                        root -> model(root).put("continuing_subword_prefix", "##")),
                broken("byte fallback without byte tokens", SENTENCEPIECE, "model.vocab", "<0x7F>", root -> {
                    vocab(root).remove("<0x7F>");
                    vocab(root).put("<0x7f>", 3 + 0x7F);
                }),
                broken("unk token not in the vocab", SENTENCEPIECE, "model.unk_token", "\"<unknown>\"",
                        root -> model(root).put("unk_token", "<unknown>")),
                broken("BertNormalizer", SENTENCEPIECE, "normalizer.type", "\"BertNormalizer\"",
                        root -> root.putObject("normalizer").put("type", "BertNormalizer")),
                broken("Lowercase in the normalizer sequence", SENTENCEPIECE, "normalizer.normalizers[1].type", "\"Lowercase\"",
                        root -> ((ArrayNode) root.get("normalizer").get("normalizers")).set(1, JSON.createObjectNode().put("type", "Lowercase"))),
                broken("regex Replace", SENTENCEPIECE, "normalizer.normalizers[1].pattern", "Regex",
                        root -> ((ObjectNode) root.get("normalizer").get("normalizers").get(1)).putObject("pattern").put("Regex", " +")),
                broken("Whitespace pre-tokenizer", SENTENCEPIECE, "pre_tokenizer.type", "\"Whitespace\"",
                        root -> root.putObject("pre_tokenizer").put("type", "Whitespace")),
                broken("unknown prepend scheme", SENTENCEPIECE, "pre_tokenizer.prepend_scheme", "\"sometimes\"",
                        root -> root.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "▁")
                                .put("prepend_scheme", "sometimes").put("split", false)),
                broken("two-character replacement", SENTENCEPIECE, "pre_tokenizer.replacement", "\"__\"",
                        root -> root.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "__")
                                .put("prepend_scheme", "first").put("split", false)),
                broken("ByteLevel over a vocabulary without the byte alphabet", SENTENCEPIECE, "model.vocab", "ByteLevel", root -> {
                    root.putNull("normalizer");
                    root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false);
                }),
                broken("CTC decoder", SENTENCEPIECE, "decoder.type", "\"CTC\"", root -> root.putObject("decoder").put("type", "CTC")),
                broken("WordPiece decoder in the sequence", SENTENCEPIECE, "decoder.decoders[2].type", "\"WordPiece\"",
                        root -> ((ArrayNode) root.get("decoder").get("decoders")).set(2, JSON.createObjectNode().put("type", "WordPiece"))),
                broken("Strip without start", SENTENCEPIECE, "decoder.decoders[3].start", "is missing",
                        root -> ((ObjectNode) root.get("decoder").get("decoders").get(3)).remove("start")),
                broken("missing added tokens", SENTENCEPIECE, "added_tokens", "is missing", root -> root.remove("added_tokens")),
                broken("added token id disagreeing with the vocab", SENTENCEPIECE, "added_tokens[1].id", "is 2",
                        root -> addedToken(root, 1).put("id", 2)),
                broken("added token taking a vocab token's id", BYTE_LEVEL, "added_tokens[1].id", "already the id of",
                        root -> ((ArrayNode) root.get("added_tokens")).addObject().put("id", 5).put("content", "<|pad|>")
                                .put("single_word", false).put("lstrip", false).put("rstrip", false)
                                .put("normalized", false).put("special", true)),
                broken("added token with a numeric lstrip", SENTENCEPIECE, "added_tokens[0].lstrip", "is 1", root -> addedToken(root, 0).put("lstrip", 1)),
                broken("RobertaProcessing", SENTENCEPIECE, "post_processor.type", "\"RobertaProcessing\"",
                        root -> root.putObject("post_processor").put("type", "RobertaProcessing")),
                broken("template special with the wrong id", SENTENCEPIECE, "post_processor.special_tokens.<s>.ids[0]", "is 7",
                        root -> ((ArrayNode) root.get("post_processor").get("special_tokens").get("<s>").get("ids")).set(0, 7)),
                broken("template without the sequence", SENTENCEPIECE, "post_processor.single", "no Sequence",
                        root -> ((ArrayNode) root.get("post_processor").get("single")).remove(1)),
                broken("padding with the wrong pad id", SENTENCEPIECE, "padding.pad_id", "is 9",
                        root -> root.putObject("padding").put("pad_token", "</s>").put("pad_id", 9)),
                // Llama 3 and Qwen2 pipelines
                broken("Split without pattern", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern", "is missing",
                        root -> split(root).remove("pattern")),
                broken("Split with an unknown behavior", LLAMA3, "pre_tokenizer.pretokenizers[0].behavior", "\"Isolate\"",
                        root -> split(root).put("behavior", "Isolate")),
                broken("Split without invert", QWEN2, "pre_tokenizer.pretokenizers[0].invert", "is missing",
                        root -> split(root).remove("invert")),
                broken("Split with an invalid regex", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern.Regex", "not a valid regex",
                        root -> split(root).putObject("pattern").put("Regex", "[\\p{L}+")),
                broken("Split pattern both String and Regex", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern", "\"String\"",
                        root -> split(root).putObject("pattern").put("Regex", "\\s").put("String", " ")),
                broken("Split pattern of an unknown kind", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern", "\"Glob\"",
                        root -> split(root).putObject("pattern").put("Glob", "*")),
                broken("Split with an empty string pattern", QWEN2, "pre_tokenizer.pretokenizers[0].pattern.String", "is empty",
                        root -> split(root).putObject("pattern").put("String", "")),
                broken("Split regex with \\w (Unicode word sets differ)", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern.Regex",
                        "the escape \\w", root -> split(root).putObject("pattern").put("Regex", "\\w+")),
                broken("Split regex with \\h (hex digit in Oniguruma)", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern.Regex",
                        "the escape \\h", root -> split(root).putObject("pattern").put("Regex", "[\\h]+")),
                broken("Split regex with an anchor", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern.Regex", "the anchor ^",
                        root -> split(root).putObject("pattern").put("Regex", "^ +")),
                broken("Split regex with a POSIX bracket", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern.Regex", "POSIX bracket",
                        root -> split(root).putObject("pattern").put("Regex", "[[:alpha:]]+")),
                broken("Split regex with (?m) (dotall in Oniguruma)", LLAMA3, "pre_tokenizer.pretokenizers[0].pattern.Regex",
                        "the group opening (?m)", root -> split(root).putObject("pattern").put("Regex", "(?m).+")),
                broken("Split regex with a script property", QWEN2, "pre_tokenizer.pretokenizers[0].pattern.Regex",
                        "a property other than a general category", root -> split(root).putObject("pattern").put("Regex", "\\p{Han}+")),
                broken("Split regex with a possessive-looking interval", QWEN2, "pre_tokenizer.pretokenizers[0].pattern.Regex",
                        "}+", root -> split(root).putObject("pattern").put("Regex", "\\p{N}{1,3}+")),
                broken("Whitespace in the pre-tokenizer sequence", LLAMA3, "pre_tokenizer.pretokenizers[1].type", "\"Whitespace\"",
                        root -> ((ArrayNode) root.get("pre_tokenizer").get("pretokenizers")).set(1, JSON.createObjectNode().put("type", "Whitespace"))),
                broken("pre-tokenizer sequence that is not an array", QWEN2, "pre_tokenizer.pretokenizers", "{}",
                        root -> ((ObjectNode) root.get("pre_tokenizer")).putObject("pretokenizers")),
                broken("Digits without individual_digits", QWEN2, "pre_tokenizer.pretokenizers[0].individual_digits", "is missing",
                        root -> ((ArrayNode) root.get("pre_tokenizer").get("pretokenizers")).set(0, JSON.createObjectNode().put("type", "Digits"))),
                broken("Lowercase after NFC in the normalizer sequence", QWEN2, "normalizer.normalizers[1].type", "\"Lowercase\"",
                        root -> root.putObject("normalizer").put("type", "Sequence").putArray("normalizers")
                                .add(JSON.createObjectNode().put("type", "NFC")).add(JSON.createObjectNode().put("type", "Lowercase"))),
                broken("unknown normalizer in a nested sequence", QWEN2, "normalizer.normalizers[0].normalizers[0].type", "\"Strip\"",
                        root -> root.putObject("normalizer").put("type", "Sequence").putArray("normalizers").addObject()
                                .put("type", "Sequence").putArray("normalizers").add(JSON.createObjectNode().put("type", "Strip"))),
                broken("added token with a numeric content", QWEN2, "added_tokens[2].content", "is 151645",
                        root -> addedToken(root, 2).put("content", 151645)),
                broken("added token with a textual rstrip", LLAMA3, "added_tokens[9].rstrip", "\"yes\"",
                        root -> addedToken(root, 9).put("rstrip", "yes")),
                broken("RobertaProcessing in the post-processor sequence", LLAMA3, "post_processor.processors[0].type", "\"RobertaProcessing\"",
                        root -> postProcessors(root).set(0, JSON.createObjectNode().put("type", "RobertaProcessing"))),
                broken("two templates in the post-processor sequence", LLAMA3, "post_processor.processors[2].type", "second",
                        root -> postProcessors(root).add(postProcessors(root).get(1).deepCopy())),
                broken("template in a sequence with the wrong BOS id", LLAMA3,
                        "post_processor.processors[1].special_tokens.<|begin_of_text|>.ids[0]", "is 3",
                        root -> ((ArrayNode) postProcessors(root).get(1).get("special_tokens").get("<|begin_of_text|>").get("ids")).set(0, 3)));
    }

    @ParameterizedTest(name = "{0} is rejected naming field {2}")
    @MethodSource("brokenFiles")
    void brokenFileIsRejectedNamingFileFieldValueAndExpectation(String description, String base, String field, String value,
                                                                Consumer<ObjectNode> breakIt) throws IOException {
        ObjectNode root = BpeTokenizerTest.resourceTree(base);
        breakIt.accept(root);
        Path file = dir.resolve("tokenizer.json");
        JSON.writeValue(file.toFile(), root);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BpeTokenizer.fromJson(file));

        String message = e.getMessage();
        assertTrue(message.startsWith(file + ": "), message);
        assertTrue(message.contains("field '" + field + "'"), message);
        assertTrue(message.contains(value), message);
        assertTrue(message.contains("; expected "), message);
    }

    @Test
    void anUnsupportedComponentIsRejectedListingWhatIsSupported() throws IOException {
        ObjectNode root = BpeTokenizerTest.resourceTree(SENTENCEPIECE);
        root.putObject("pre_tokenizer").put("type", "BertPreTokenizer");
        Path file = dir.resolve("bert.json");
        JSON.writeValue(file.toFile(), root);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BpeTokenizer.fromJson(file));

        assertTrue(e.getMessage().contains("'pre_tokenizer.type' is \"BertPreTokenizer\"; expected one of "
                + "[ByteLevel, Metaspace, Split, Digits, Sequence]"), e.getMessage());
    }

    @Test
    void invalidJsonIsRejectedNamingTheFile() throws IOException {
        Path file = dir.resolve("broken.json");
        Files.writeString(file, "{\"model\": {\"type\": \"BPE\",");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BpeTokenizer.fromJson(file));

        assertTrue(e.getMessage().startsWith(file + ": not valid JSON"), e.getMessage());
    }

    @Test
    void aJsonArrayIsRejectedAsNotATokenizerObject() throws IOException {
        Path file = dir.resolve("array.json");
        Files.writeString(file, "[1, 2]");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BpeTokenizer.fromJson(file));

        assertTrue(e.getMessage().contains("field '(root)' is [1,2]"), e.getMessage());
    }

    @Test
    void aMissingFileIsReportedByName() {
        Path file = dir.resolve("absent.json");

        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> BpeTokenizer.fromJson(file));

        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    private static Arguments broken(String description, String base, String field, String value, Consumer<ObjectNode> breakIt) {
        return Arguments.of(description, base, field, value, breakIt);
    }

    private static ObjectNode model(ObjectNode root) {
        return (ObjectNode) root.get("model");
    }

    private static ObjectNode vocab(ObjectNode root) {
        return (ObjectNode) root.get("model").get("vocab");
    }

    private static ArrayNode merges(ObjectNode root) {
        return (ArrayNode) root.get("model").get("merges");
    }

    private static ObjectNode split(ObjectNode root) {
        return (ObjectNode) root.get("pre_tokenizer").get("pretokenizers").get(0);
    }

    private static ArrayNode postProcessors(ObjectNode root) {
        return (ArrayNode) root.get("post_processor").get("processors");
    }

    private static ObjectNode addedToken(ObjectNode root, int index) {
        return (ObjectNode) root.get("added_tokens").get(index);
    }
}
