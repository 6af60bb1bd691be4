package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import dev.moelora.model.data.SharedData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * GPT-2's real vocabulary against an independent implementation: JTokkit's {@code r50k_base} is
 * GPT-2's BPE (OpenAI's tiktoken ranks). Its ranks are turned into a GPT-2 tokenizer.json the way
 * Hugging Face converts tiktoken files (each multi-byte token's merge is the pair that BPE over its
 * bytes with only lower ranks leaves), and our tokenizer reads that file; every id must then equal
 * JTokkit's, on a committed corpus and on the real datasets under the shared data directory.
 */
class BpeTokenizerGpt2Test {

    private static final String RANKS = "/com/knuddels/jtokkit/r50k_base.tiktoken";
    private static final int END_OF_TEXT = 50256;

    @TempDir
    static Path dir;

    private static BpeTokenizer gpt2;
    private static Encoding jtokkit;

    @BeforeAll
    static void convertJTokkitRanksToATokenizerJson() throws IOException {
        Path file = dir.resolve("gpt2-tokenizer.json");
        BpeTokenizerTest.JSON.writeValue(file.toFile(), gpt2TokenizerJson(tiktokenRanks()));
        gpt2 = BpeTokenizer.fromJson(file);
        jtokkit = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.R50K_BASE);
    }

    @Test
    void matchesJTokkitOnTheCommittedCorpus() throws IOException {
        String corpus;
        try (InputStream in = BpeTokenizerGpt2Test.class.getResourceAsStream("/tokenizer/bpe-corpus.txt")) {
            corpus = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertTrue(corpus.length() > 2000, "corpus has " + corpus.length() + " chars");

        assertMatchesJTokkit(corpus);
        for (String line : corpus.split("(?<=\n)")) {
            assertMatchesJTokkit(line);
        }
    }

    @Test
    void matchesJTokkitOnTheSharedDatasets() throws IOException {
        Optional<Path> shared = SharedData.root();
        assumeTrue(shared.isPresent(), "no shared data directory next to the checkout");
        List<String> texts = datasetTexts(shared.get());
        assumeTrue(!texts.isEmpty(), "no gsm8k or llm-adapters files under " + shared.get());

        long chars = 0;
        for (String text : texts) {
            assertMatchesJTokkit(text);
            chars += text.length();
        }
        assertTrue(chars > 500_000, "only " + chars + " chars of dataset text");
    }

    @Test
    void spellsGpt2sKnownIds() {
        // Ids from GPT-2's published vocab.json: "Hello" 15496, "Ġworld" 995, "!" 0, "<|endoftext|>" 50256.
        assertArrayEquals(new int[] {15496, 995, 0}, gpt2.encode("Hello world!"));
        assertEquals(50257, gpt2.vocabSize());
        assertEquals(END_OF_TEXT, gpt2.eosId().orElseThrow());
    }

    @Test
    void endOfTextWrittenInTheTextIsTheSpecialToken() {
        int[] ids = gpt2.encode("Hello<|endoftext|> world");

        assertArrayEquals(new int[] {15496, END_OF_TEXT, 995}, ids);
        assertEquals("Hello world", gpt2.decode(ids, true));
    }

    private static void assertMatchesJTokkit(String text) {
        int[] ids = gpt2.encode(text);
        assertArrayEquals(jtokkit.encode(text).toArray(), ids, () -> "r50k_base ids differ for " + BpeTokenizerTest.JSON
                .getNodeFactory().textNode(text.length() > 300 ? text.substring(0, 300) + "..." : text));
        assertEquals(text, gpt2.decode(ids), "decode(encode(text))");
    }

    /**
     * Questions and answers of gsm8k's test set (digits, arithmetic, newlines), instructions and outputs
     * of LLM-Adapters' AQuA (×, ÷, √), and every LLM-Adapters test record with non-ASCII text: about 900 KB.
     */
    private static List<String> datasetTexts(Path shared) throws IOException {
        List<String> texts = new ArrayList<>();
        Path gsm8k = shared.resolve("gsm8k").resolve("test.jsonl");
        if (Files.isRegularFile(gsm8k)) {
            try (Stream<String> lines = Files.lines(gsm8k)) {
                for (String line : (Iterable<String>) lines::iterator) {
                    JsonNode record = BpeTokenizerTest.JSON.readTree(line);
                    texts.add(record.get("question").textValue());
                    texts.add(record.get("answer").textValue());
                }
            }
        }
        Path sets = shared.resolve("llm-adapters").resolve("dataset");
        if (Files.isDirectory(sets)) {
            try (Stream<Path> dirs = Files.list(sets)) {
                for (Path set : dirs.sorted().toList()) {
                    Path file = set.resolve("test.json");
                    if (!Files.isRegularFile(file)) {
                        continue;
                    }
                    boolean everyRecord = set.getFileName().toString().equals("AQuA");
                    for (JsonNode record : BpeTokenizerTest.JSON.readTree(file.toFile())) {
                        String instruction = record.get("instruction").textValue();
                        String output = record.get("output").textValue();
                        if (everyRecord || !(instruction + output).chars().allMatch(c -> c < 0x80)) {
                            texts.add(instruction);
                            texts.add(output);
                        }
                    }
                }
            }
        }
        return texts;
    }

    // --- tiktoken ranks to a Hugging Face tokenizer.json ---

    /** Token bytes, as ISO-8859-1 strings (one char per byte), to rank, from JTokkit's bundled "base64 rank" lines. */
    private static Map<String, Integer> tiktokenRanks() throws IOException {
        Map<String, Integer> ranks = new HashMap<>();
        try (InputStream in = BpeTokenizerGpt2Test.class.getResourceAsStream(RANKS);
             BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII))) {
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                String[] parts = line.split(" ");
                ranks.put(new String(Base64.getDecoder().decode(parts[0]), StandardCharsets.ISO_8859_1), Integer.parseInt(parts[1]));
            }
        }
        assertEquals(END_OF_TEXT, ranks.size(), "r50k_base ranks");
        return ranks;
    }

    private static ObjectNode gpt2TokenizerJson(Map<String, Integer> ranks) {
        String[] byRank = new String[ranks.size()];
        ranks.forEach((token, rank) -> byRank[rank] = token);
        char[] alphabet = gpt2BytesToUnicode();

        ObjectNode root = BpeTokenizerTest.JSON.createObjectNode();
        root.putArray("added_tokens").addObject().put("id", END_OF_TEXT).put("content", "<|endoftext|>")
                .put("single_word", false).put("lstrip", false).put("rstrip", false).put("normalized", true).put("special", true);
        root.putNull("normalizer");
        ObjectNode byteLevel = root.putObject("pre_tokenizer").put("type", "ByteLevel")
                .put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", true);
        root.set("post_processor", byteLevel.deepCopy());
        root.set("decoder", byteLevel.deepCopy());
        ObjectNode model = root.putObject("model").put("type", "BPE").putNull("dropout").putNull("unk_token")
                .put("continuing_subword_prefix", "").put("end_of_word_suffix", "").put("fuse_unk", false);
        ObjectNode vocab = model.putObject("vocab");
        ArrayNode merges = model.putArray("merges");
        for (int rank = 0; rank < byRank.length; rank++) {
            vocab.put(spell(byRank[rank], alphabet), rank);
            if (byRank[rank].length() > 1) {
                List<String> parts = bytePairMerge(byRank[rank], ranks, rank);
                assertEquals(2, parts.size(), "token of rank " + rank + " splits into " + parts);
                merges.add(spell(parts.get(0), alphabet) + " " + spell(parts.get(1), alphabet));
            }
        }
        vocab.put("<|endoftext|>", END_OF_TEXT);
        return root;
    }

    /**
     * tiktoken's BPE on a token's bytes using only ranks below {@code maxRank}: merge the lowest-ranked
     * adjacent pair (leftmost on ties) until none is left. Pair ranks are kept per position and only the
     * merged pair's neighbours are looked up again, which keeps converting 50k tokens quick.
     */
    private static List<String> bytePairMerge(String token, Map<String, Integer> ranks, int maxRank) {
        List<String> parts = new ArrayList<>();
        for (char b : token.toCharArray()) {
            parts.add(String.valueOf(b));
        }
        List<Integer> pairRanks = new ArrayList<>();
        for (int i = 0; i + 1 < parts.size(); i++) {
            pairRanks.add(pairRank(parts, i, ranks, maxRank));
        }
        while (true) {
            int best = -1;
            for (int i = 0; i < pairRanks.size(); i++) {
                if (pairRanks.get(i) < maxRank && (best < 0 || pairRanks.get(i) < pairRanks.get(best))) {
                    best = i;
                }
            }
            if (best < 0) {
                return parts;
            }
            parts.set(best, parts.get(best) + parts.remove(best + 1));
            pairRanks.remove(best);
            if (best < pairRanks.size()) {
                pairRanks.set(best, pairRank(parts, best, ranks, maxRank));
            }
            if (best > 0) {
                pairRanks.set(best - 1, pairRank(parts, best - 1, ranks, maxRank));
            }
        }
    }

    private static int pairRank(List<String> parts, int i, Map<String, Integer> ranks, int maxRank) {
        return ranks.getOrDefault(parts.get(i) + parts.get(i + 1), maxRank);
    }

    /** GPT-2's bytes_to_unicode (encoder.py), written out here independently of the class under test. */
    private static char[] gpt2BytesToUnicode() {
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) {
            bs.add(b);
        }
        for (int b = '¡'; b <= '¬'; b++) {
            bs.add(b);
        }
        for (int b = '®'; b <= 'ÿ'; b++) {
            bs.add(b);
        }
        char[] chars = new char[256];
        for (int b : bs) {
            chars[b] = (char) b;
        }
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if (!bs.contains(b)) {
                chars[b] = (char) (256 + n++);
            }
        }
        return chars;
    }

    private static String spell(String bytes, char[] alphabet) {
        StringBuilder spelled = new StringBuilder(bytes.length());
        for (char b : bytes.toCharArray()) {
            spelled.append(alphabet[b]);
        }
        return spelled.toString();
    }
}
