package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.function.UnaryOperator;
import java.util.stream.IntStream;

/**
 * Turns text into the token ids of a BPE decoder model and back, reading the Hugging Face
 * {@code tokenizer.json} that ships with it: GPT-2-style byte-level BPE, and the SentencePiece-style
 * BPE with byte fallback of the LLaMA family (LLaMA 1/2, TinyLlama, Mistral).
 *
 * <p>It reproduces the Hugging Face {@code tokenizers} pipeline for exactly these components:
 * added-token splitting (special or not, matched in the raw text, or in the normalized text when
 * there is no normalizer); normalizers {@code Prepend}, {@code Replace} with a string pattern, and a
 * {@code Sequence} of them; pre-tokenizers {@code ByteLevel} and {@code Metaspace}; the {@code BPE}
 * model with {@code byte_fallback}, {@code unk_token}, {@code fuse_unk} and {@code ignore_merges};
 * post-processors {@code TemplateProcessing} (single sequence) and {@code ByteLevel}; decoders
 * {@code ByteLevel}, {@code Metaspace}, {@code Replace}, {@code ByteFallback}, {@code Fuse},
 * {@code Strip} and a {@code Sequence} of them. Training and generation must use the ids the pretrained weights saw, so
 * it must never approximate: a file that asks for any other component, or an option it does not
 * implement, is rejected with an {@link IllegalArgumentException} naming the file, the field and the
 * value, never tokenized differently. The file's {@code truncation} is not applied, and
 * {@code padding} only names the pad token: cutting and padding belong to batching.
 *
 * <p>Deliberate differences from the reference, both about inputs it handles badly: a character the
 * model can spell neither as a token, nor by byte fallback, nor as unk is an error here where
 * tokenizers drops it silently; and an unpaired UTF-16 surrogate is read as U+FFFD, as the reference's
 * bindings do before its Rust code ever sees the text.
 *
 * <p>Thread-safe: immutable apart from the BPE model's bounded cache of merged words.
 */
public final class BpeTokenizer {

    private static final List<String> NORMALIZER_TYPES = List.of("Prepend", "Replace", "Sequence");
    private static final List<String> PRE_TOKENIZER_TYPES = List.of("ByteLevel", "Metaspace");
    private static final List<String> POST_PROCESSOR_TYPES = List.of("TemplateProcessing", "ByteLevel");
    /** Names under which files that do not say it themselves conventionally keep BOS and EOS, in order of preference. */
    private static final List<String> CONVENTIONAL_BOS = List.of("<s>", "<|begin_of_text|>", "<|endoftext|>");
    private static final List<String> CONVENTIONAL_EOS = List.of("</s>", "<|end_of_text|>", "<|endoftext|>");

    private final String source;
    private final BpeModel model;
    /** Every id's token, model vocabulary and added tokens together, {@code (V)}. */
    private final String[] tokenById;
    private final Map<String, Integer> idByToken;
    /** Whether each id is a special added token, {@code (V)}. */
    private final boolean[] special;

    private final List<UnaryOperator<String>> normalizers;
    private final PreTokenizer preTokenizer;
    private final AddedTokens addedTokens;
    private final BpeDecoder decoder;

    private final PostProcessorTemplate template;
    private final OptionalInt bosId;
    private final OptionalInt eosId;
    private final OptionalInt padId;
    private final OptionalInt unkId;

    public static BpeTokenizer fromJson(Path file) {
        return new BpeTokenizer(TokenizerJson.read(file));
    }

    public static BpeTokenizer fromStream(InputStream in, String sourceName) {
        return new BpeTokenizer(TokenizerJson.read(in, sourceName));
    }

    private BpeTokenizer(TokenizerJson json) {
        this.source = json.source;
        JsonNode root = json.root;
        this.model = BpeModel.read(json, json.object(root, "model", "model", "a BPE model object"));
        this.normalizers = readNormalizers(json, json.optionalObject(root, "normalizer", "normalizer", "a normalizer object or null"));
        this.preTokenizer = readPreTokenizer(json, json.optionalObject(root, "pre_tokenizer", "pre_tokenizer", "a pre-tokenizer object or null"));
        this.decoder = BpeDecoder.read(json, json.optionalObject(root, "decoder", "decoder", "a decoder object or null"));

        // Added tokens may be new ids beyond the model's vocabulary (GPT-2's <|endoftext|> is).
        this.addedTokens = AddedTokens.read(json, model.vocab(), true, !normalizers.isEmpty());
        this.tokenById = denseVocabulary(json, addedTokens.tokens());
        this.idByToken = new HashMap<>(model.vocab());
        this.special = new boolean[tokenById.length];
        for (AddedTokens.Token token : addedTokens.tokens()) {
            idByToken.put(token.content(), token.id());
            special[token.id()] = token.special();
        }

        this.template = readTemplate(json, json.optionalObject(root, "post_processor", "post_processor",
                "a post-processor object or null"));
        int[] leading = template.leadingIds();
        int[] trailing = template.trailingIds();
        this.bosId = leading.length == 1 ? OptionalInt.of(leading[0]) : conventionalSpecial(CONVENTIONAL_BOS);
        this.eosId = trailing.length == 1 ? OptionalInt.of(trailing[0]) : conventionalSpecial(CONVENTIONAL_EOS);
        this.padId = readPadId(json);
        this.unkId = model.unkId() < 0 ? OptionalInt.empty() : OptionalInt.of(model.unkId());
    }

    /** The ids of {@code text} with the special tokens the post-processor adds (LLaMA's leading {@code <s>}), as tokenizers' encode does by default. */
    public int[] encode(String text) {
        return encode(text, true);
    }

    /**
     * The ids of {@code text}; with {@code addSpecialTokens}, the post-processor's special tokens around
     * them. Special tokens written in the text (say a literal {@code </s>}) are always matched as such.
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        IntStream.Builder ids = IntStream.builder();
        addedTokens.splitRaw(wellFormed(text), (segment, offset) -> appendSegment(segment, offset == 0, ids), ids::add);
        int[] plain = ids.build().toArray();
        return addSpecialTokens ? template.apply(plain).ids() : plain;
    }

    /** The text of {@code ids}, special tokens included. */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /** The text of {@code ids}; with {@code skipSpecialTokens}, special added tokens ({@code <s>}, {@code <|endoftext|>}) are left out. */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            String token = token(id);
            if (!(skipSpecialTokens && special[id])) {
                tokens.add(token);
            }
        }
        return decoder.decode(tokens);
    }

    /** The id of {@code token}, or -1 when neither the vocabulary nor the added tokens hold it. */
    public int tokenId(String token) {
        return idByToken.getOrDefault(token, -1);
    }

    public String token(int id) {
        if (id < 0 || id >= tokenById.length) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + source
                    + "; expected 0.." + (tokenById.length - 1));
        }
        return tokenById[id];
    }

    /** Number of ids, model vocabulary and added tokens together: the rows of the model's embedding. */
    public int vocabSize() {
        return tokenById.length;
    }

    /**
     * The beginning-of-sequence token: the one special token the post-processor puts before the text,
     * else the first special added token named {@code <s>}, {@code <|begin_of_text|>} or
     * {@code <|endoftext|>} (GPT-2 uses it for both ends). A tokenizer.json does not name BOS and EOS
     * itself; Hugging Face keeps them in tokenizer_config.json, which this class does not read.
     */
    public OptionalInt bosId() {
        return bosId;
    }

    /** The end-of-sequence token: as {@link #bosId()}, after the text, else {@code </s>}, {@code <|end_of_text|>} or {@code <|endoftext|>}. */
    public OptionalInt eosId() {
        return eosId;
    }

    /** The pad token the file's {@code padding} section names, if it has one. */
    public OptionalInt padId() {
        return padId;
    }

    /** The model's {@code unk_token}, if it has one. */
    public OptionalInt unkId() {
        return unkId;
    }

    // --- the pipeline: added tokens, normalizer, pre-tokenizer, model ---

    /** Normalizes one stretch of text between raw-matched added tokens, then splits it on normalized-matched ones. */
    private void appendSegment(String segment, boolean atInputStart, IntStream.Builder ids) {
        String normalized = segment;
        for (UnaryOperator<String> normalizer : normalizers) {
            normalized = normalizer.apply(normalized);
        }
        addedTokens.splitNormalized(normalized, (piece, offset) -> {
            for (String word : preTokenizer.words(piece, atInputStart && offset == 0)) {
                if (!word.isEmpty()) {
                    IntStream.of(model.ids(word)).forEach(ids::add);
                }
            }
        }, ids::add);
    }

    /** Rust strings cannot hold an unpaired surrogate; the reference's bindings turn one into U+FFFD before tokenizing. */
    private static String wellFormed(String text) {
        StringBuilder fixed = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean paired = Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1));
            if (paired) {
                if (fixed != null) {
                    fixed.append(c).append(text.charAt(i + 1));
                }
                i++;
                continue;
            }
            boolean lone = Character.isSurrogate(c);
            if (lone && fixed == null) {
                fixed = new StringBuilder(text.length()).append(text, 0, i);
            }
            if (fixed != null) {
                fixed.append(lone ? '\uFFFD' : c);
            }
        }
        return fixed == null ? text : fixed.toString();
    }

    private interface PreTokenizer {
        /** The words of one piece of normalized text; {@code atInputStart} says whether it begins the whole input. */
        List<String> words(String piece, boolean atInputStart);
    }

    // --- reading tokenizer.json ---

    private static List<UnaryOperator<String>> readNormalizers(TokenizerJson json, JsonNode normalizer) {
        List<UnaryOperator<String>> steps = new ArrayList<>();
        if (normalizer == null) {
            return steps;
        }
        if (json.type(normalizer, "normalizer", NORMALIZER_TYPES).equals("Sequence")) {
            JsonNode list = json.array(normalizer, "normalizers", "normalizer.normalizers", "an array of normalizers");
            for (int i = 0; i < list.size(); i++) {
                String path = "normalizer.normalizers[" + i + "]";
                JsonNode step = list.get(i);
                if (!step.isObject()) {
                    throw json.fail(path, "is " + TokenizerJson.abbreviate(step), "a normalizer object");
                }
                json.type(step, path, List.of("Prepend", "Replace"));
                steps.add(normalizerStep(json, step, path));
            }
        } else {
            steps.add(normalizerStep(json, normalizer, "normalizer"));
        }
        return List.copyOf(steps);
    }

    private static UnaryOperator<String> normalizerStep(TokenizerJson json, JsonNode step, String path) {
        if (step.get("type").textValue().equals("Prepend")) {
            String prefix = json.text(step, "prepend", path + ".prepend");
            // tokenizers prepends nothing to an empty string.
            return s -> s.isEmpty() ? s : prefix + s;
        }
        String pattern = BpeDecoder.stringPattern(json, step, path);
        String content = json.text(step, "content", path + ".content");
        return s -> s.replace(pattern, content);
    }

    private PreTokenizer readPreTokenizer(TokenizerJson json, JsonNode node) {
        if (node == null) {
            return (piece, atInputStart) -> List.of(piece);
        }
        if (json.type(node, "pre_tokenizer", PRE_TOKENIZER_TYPES).equals("Metaspace")) {
            Metaspace metaspace = Metaspace.read(json, node, "pre_tokenizer");
            return metaspace::words;
        }
        boolean addPrefixSpace = json.bool(node, "add_prefix_space", "pre_tokenizer.add_prefix_space");
        boolean useRegex = json.optionalBool(node, "use_regex", "pre_tokenizer.use_regex", true);
        for (int b = 0; b < 256; b++) {
            String character = String.valueOf(ByteLevel.charOf(b));
            if (!model.vocab().containsKey(character)) {
                throw json.fail("model.vocab", "has no token \"" + character + "\" for byte " + String.format("0x%02X", b)
                        + " although pre_tokenizer is ByteLevel", "all 256 characters of the byte-level alphabet");
            }
        }
        return (piece, atInputStart) -> ByteLevel.words(piece, addPrefixSpace, useRegex);
    }

    /** Model vocabulary and added tokens as one table; ids must be 0..V-1, each used once, so that V is the embedding rows. */
    private String[] denseVocabulary(TokenizerJson json, List<AddedTokens.Token> added) {
        Map<Integer, String> byId = new HashMap<>();
        model.vocab().forEach((token, id) -> byId.put(id, token));
        for (int i = 0; i < added.size(); i++) {
            AddedTokens.Token token = added.get(i);
            String existing = byId.putIfAbsent(token.id(), token.content());
            if (existing != null && !existing.equals(token.content())) {
                throw json.fail("added_tokens[" + i + "].id", "is " + token.id() + " for \"" + token.content()
                        + "\", already the id of \"" + existing + "\"", "an id no other token has");
            }
        }
        int size = byId.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        String[] tokens = new String[size];
        for (int id = 0; id < size; id++) {
            tokens[id] = byId.get(id);
            if (tokens[id] == null) {
                throw json.fail("model.vocab", "and added_tokens leave id " + id + " unused",
                        "ids 0.." + (size - 1) + ", each used once");
            }
        }
        return tokens;
    }

    /** The {@code single} template of a TemplateProcessing post-processor; one that adds nothing for ByteLevel (offsets only) or none. */
    private PostProcessorTemplate readTemplate(TokenizerJson json, JsonNode post) {
        if (post == null || json.type(post, "post_processor", POST_PROCESSOR_TYPES).equals("ByteLevel")) {
            return PostProcessorTemplate.sequenceOnly(json.source);
        }
        return PostProcessorTemplate.single(json, post, this::tokenId);
    }

    private OptionalInt readPadId(TokenizerJson json) {
        JsonNode padding = json.optionalObject(json.root, "padding", "padding", "a padding object or null");
        if (padding == null) {
            return OptionalInt.empty();
        }
        String token = json.text(padding, "pad_token", "padding.pad_token");
        int id = json.nonNegativeInt(padding, "pad_id", "padding.pad_id");
        if (tokenId(token) != id) {
            throw json.fail("padding.pad_id", "is " + id + " for \"" + token + "\"",
                    "the id the vocabulary gives it (" + (tokenId(token) < 0 ? "absent" : tokenId(token)) + ")");
        }
        return OptionalInt.of(id);
    }

    private OptionalInt conventionalSpecial(List<String> names) {
        for (String name : names) {
            int id = tokenId(name);
            if (id >= 0 && special[id]) {
                return OptionalInt.of(id);
            }
        }
        return OptionalInt.empty();
    }
}
