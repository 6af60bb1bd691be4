package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * Turns text into the token ids of a BPE decoder model and back, reading the Hugging Face
 * {@code tokenizer.json} that ships with it: GPT-2-style byte-level BPE, the SentencePiece-style
 * BPE with byte fallback of the LLaMA family (LLaMA 1/2, TinyLlama, Mistral), and the byte-level BPE
 * behind a regex {@code Split} of Llama 3 and Qwen2/Qwen2.5 (or the {@code Digits} split of SmolLM2).
 *
 * <p>It reproduces the Hugging Face {@code tokenizers} pipeline for exactly these components:
 * added-token splitting (special or not, {@code single_word}, {@code lstrip}, {@code rstrip},
 * matched in the raw text or, {@code normalized}, in the normalized text; see {@link AddedTokens});
 * the normalizers of {@link Normalizer}; the pre-tokenizers of {@link PreTokenizer}; the {@code BPE}
 * model with {@code byte_fallback}, {@code unk_token}, {@code fuse_unk} and {@code ignore_merges};
 * post-processors {@code TemplateProcessing} (single sequence), {@code ByteLevel}, and a
 * {@code Sequence} of ByteLevel and at most one TemplateProcessing (Llama 3.1's); decoders
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

    private static final List<String> POST_PROCESSOR_TYPES = List.of("TemplateProcessing", "ByteLevel", "Sequence");
    private static final List<String> SEQUENCE_POST_PROCESSOR_TYPES = List.of("TemplateProcessing", "ByteLevel");
    /** Names under which files that do not say it themselves conventionally keep BOS and EOS, in order of preference. */
    private static final List<String> CONVENTIONAL_BOS = List.of("<s>", "<|begin_of_text|>", "<|endoftext|>");
    private static final List<String> CONVENTIONAL_EOS = List.of("</s>", "<|end_of_text|>", "<|endoftext|>");
    /** Special tokens that end a sequence or a chat turn: Llama 3's end of text, end of turn and end of message, Qwen2's end of turn. */
    private static final List<String> END_TOKENS = List.of("</s>", "<|end_of_text|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|im_end|>");

    private final String source;
    private final BpeModel model;
    /**
     * Every id's token, model vocabulary and added tokens together, {@code (V)}; a {@code normalized}
     * added token in its normalized form, which is what the reference decodes and reports for its id.
     */
    private final String[] tokenById;
    /** By content, as the reference's token_to_id. */
    private final Map<String, Integer> idByToken;
    /** Whether each id is a special added token, {@code (V)}. */
    private final boolean[] special;
    /** The contents of the special added tokens: decoding that skips them tests each id's token against these. */
    private final Set<String> specialContents = new HashSet<>();

    private final Normalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final AddedTokens addedTokens;
    private final BpeDecoder decoder;

    private final PostProcessorTemplate template;
    private final OptionalInt bosId;
    private final OptionalInt eosId;
    /** EOS first, then the template's trailing specials and the conventional end tokens the file holds as special tokens. */
    private final int[] endIds;
    private final OptionalInt padId;
    private final OptionalInt unkId;

    /**
     * Reads {@code file}, and the {@code tokenizer_config.json} beside it if there is one: its
     * {@code bos_token} and {@code eos_token} then decide {@link #bosId()} and {@link #eosId()}, and its
     * {@code add_bos_token} / {@code add_eos_token}, when present, must agree with what the
     * post-processor adds. (transformers applies those flags to some tokenizer classes and not to others
     * — 5.18 leaves a tokenizer.json's post-processor alone for PreTrainedTokenizerFast — so a file
     * where they disagree has no single right encoding and is refused.)
     */
    public static BpeTokenizer fromJson(Path file) {
        TokenizerJson json = TokenizerJson.read(file);
        return new BpeTokenizer(json, TokenizerConfig.besides(file).orElse(null));
    }

    /** Reads a tokenizer.json alone, without a tokenizer_config.json. */
    public static BpeTokenizer fromStream(InputStream in, String sourceName) {
        return new BpeTokenizer(TokenizerJson.read(in, sourceName), null);
    }

    private BpeTokenizer(TokenizerJson json, TokenizerConfig config) {
        this.source = json.source;
        JsonNode root = json.root;
        this.model = BpeModel.read(json, json.object(root, "model", "model", "a BPE model object"));
        this.normalizer = Normalizer.read(json, json.optionalObject(root, "normalizer", "normalizer", "a normalizer object or null"), "normalizer");
        this.preTokenizer = PreTokenizer.read(json, json.optionalObject(root, "pre_tokenizer", "pre_tokenizer",
                "a pre-tokenizer object or null"), "pre_tokenizer", model.vocab());
        this.decoder = BpeDecoder.read(json, json.optionalObject(root, "decoder", "decoder", "a decoder object or null"));

        // Added tokens may be new ids beyond the model's vocabulary (GPT-2's <|endoftext|> is).
        this.addedTokens = AddedTokens.read(json, model.vocab(), true, normalizer);
        this.tokenById = denseVocabulary(json, addedTokens.tokens());
        this.idByToken = new HashMap<>(model.vocab());
        this.special = new boolean[tokenById.length];
        for (AddedTokens.Token token : addedTokens.tokens()) {
            idByToken.put(token.content(), token.id());
            tokenById[token.id()] = token.pattern();
            special[token.id()] = token.special();
            if (token.special()) {
                specialContents.add(token.content());
            }
        }

        this.template = readTemplate(json, json.optionalObject(root, "post_processor", "post_processor",
                "a post-processor object or null"));
        int[] leading = template.leadingIds();
        int[] trailing = template.trailingIds();
        this.bosId = config != null && config.bos() != null ? configured(config, "bos_token", config.bos())
                : leading.length == 1 ? OptionalInt.of(leading[0]) : conventionalSpecial(CONVENTIONAL_BOS);
        this.eosId = config != null && config.eos() != null ? configured(config, "eos_token", config.eos())
                : trailing.length == 1 ? OptionalInt.of(trailing[0]) : conventionalSpecial(CONVENTIONAL_EOS);
        if (config != null) {
            checkAgrees(config, "add_bos_token", config.addBos(), bosId, leading, "before");
            checkAgrees(config, "add_eos_token", config.addEos(), eosId, trailing, "after");
        }
        this.endIds = endIds(trailing);
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

    /**
     * The text of {@code ids}; with {@code skipSpecialTokens}, special added tokens ({@code <s>},
     * {@code <|endoftext|>}) are left out. As in the reference, what is left out is any id whose token
     * reads as a special token's content, so a {@code normalized} special token that normalization
     * changed is kept.
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            String token = token(id);
            if (!(skipSpecialTokens && specialContents.contains(token))) {
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
     * The beginning-of-sequence token: the tokenizer_config.json's {@code bos_token} when
     * {@link #fromJson} found one (Qwen2.5's says none), else the one special token the post-processor
     * puts before the text, else the first special added token named {@code <s>},
     * {@code <|begin_of_text|>} or {@code <|endoftext|>} (GPT-2 uses it for both ends). Encoding adds
     * BOS only through the post-processor, whatever this returns.
     */
    public OptionalInt bosId() {
        return bosId;
    }

    /**
     * The end-of-sequence token: the tokenizer_config.json's {@code eos_token} when {@link #fromJson} found
     * one, else the one special token the post-processor puts after the text, else {@code </s>},
     * {@code <|end_of_text|>} or {@code <|endoftext|>}. Training appends it to each response.
     */
    public OptionalInt eosId() {
        return eosId;
    }

    /**
     * Every token that may end a generation, {@link #eosId()} first: also the post-processor's trailing
     * specials and the special tokens {@code </s>}, {@code <|end_of_text|>}, {@code <|endoftext|>},
     * {@code <|eot_id|>}, {@code <|eom_id|>}, {@code <|im_end|>} the file holds — as Llama 3.1 Instruct's
     * and Qwen2.5 Instruct's generation configs list end of text and end of turn together.
     */
    public int[] endIds() {
        return endIds.clone();
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
        String normalized = normalizer.apply(segment);
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

    // --- reading tokenizer.json ---

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

    /**
     * The {@code single} template of a TemplateProcessing post-processor, alone or in a Sequence beside
     * ByteLevel ones; one that adds nothing for ByteLevel (offsets only) or none.
     */
    private PostProcessorTemplate readTemplate(TokenizerJson json, JsonNode post) {
        if (post == null) {
            return PostProcessorTemplate.sequenceOnly(json.source);
        }
        switch (json.type(post, "post_processor", POST_PROCESSOR_TYPES)) {
            case "ByteLevel" -> {
                return PostProcessorTemplate.sequenceOnly(json.source);
            }
            case "TemplateProcessing" -> {
                return PostProcessorTemplate.single(json, post, this::tokenId);
            }
            default -> {
                JsonNode list = json.array(post, "processors", "post_processor.processors", "an array of post-processors");
                PostProcessorTemplate template = null;
                for (int i = 0; i < list.size(); i++) {
                    String path = "post_processor.processors[" + i + "]";
                    JsonNode step = list.get(i);
                    if (!step.isObject()) {
                        throw json.fail(path, "is " + TokenizerJson.abbreviate(step), "a post-processor object");
                    }
                    if (json.type(step, path, SEQUENCE_POST_PROCESSOR_TYPES).equals("TemplateProcessing")) {
                        if (template != null) {
                            throw json.fail(path + ".type", "is a second \"TemplateProcessing\"", "at most one TemplateProcessing in the sequence");
                        }
                        template = PostProcessorTemplate.single(json, step, path, this::tokenId);
                    }
                }
                return template != null ? template : PostProcessorTemplate.sequenceOnly(json.source);
            }
        }
    }

    private OptionalInt configured(TokenizerConfig config, String field, TokenizerConfig.Named named) {
        if (named.token() == null) {
            return OptionalInt.empty();
        }
        int id = tokenId(named.token());
        if (id < 0) {
            throw new IllegalArgumentException(config.source() + ": field '" + field + "' is \"" + named.token() + "\"; expected a token "
                    + source + " holds");
        }
        return OptionalInt.of(id);
    }

    /** tokenizer_config.json's {@code add_bos_token} or {@code add_eos_token} must say what the post-processor does. */
    private void checkAgrees(TokenizerConfig config, String field, Boolean add, OptionalInt token, int[] added, String where) {
        if (add == null) {
            return;
        }
        boolean agrees = add ? token.isPresent() && Arrays.equals(added, new int[] {token.getAsInt()}) : added.length == 0;
        if (!agrees) {
            String does = added.length == 0 ? "adds nothing " + where + " the text"
                    : "puts " + Arrays.stream(added).mapToObj(this::token).toList() + " " + where + " the text";
            throw new IllegalArgumentException(config.source() + ": field '" + field + "' is " + add + " while the post_processor of "
                    + source + " " + does + "; expected the two to agree (transformers applies " + field
                    + " for some tokenizer classes only, so the ids would depend on which)");
        }
    }

    private int[] endIds(int[] trailing) {
        LinkedHashSet<Integer> ids = new LinkedHashSet<>();
        eosId.ifPresent(ids::add);
        Arrays.stream(trailing).forEach(ids::add);
        for (String name : END_TOKENS) {
            int id = tokenId(name);
            if (id >= 0 && special[id]) {
                ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
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
