package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * What a Hugging Face {@code tokenizer_config.json} beside a {@code tokenizer.json} says that the
 * tokenizer.json cannot: which tokens are BOS and EOS ({@code bos_token}, {@code eos_token}: a
 * string, an {@code AddedToken} object with its {@code content}, or null for none — Qwen2.5 has no
 * BOS and ends its chat turns with {@code <|im_end|>}), and whether BOS and EOS are added
 * ({@code add_bos_token}, {@code add_eos_token}).
 *
 * <p>It only reads; the tokenizer decides what a field changes. Everything else in the file (the chat
 * template, padding side, model_max_length) is left to the code that needs it.
 *
 * @param bos null when the file does not say
 * @param addBos null when the file does not say
 */
record TokenizerConfig(String source, Named bos, Named eos, Boolean addBos, Boolean addEos) {

    /** A token the file names; {@code token} null when it says there is none. */
    record Named(String token) {}

    static final String FILE_NAME = "tokenizer_config.json";

    /** The tokenizer_config.json beside {@code tokenizerFile}, if there is one. */
    static Optional<TokenizerConfig> besides(Path tokenizerFile) {
        Path file = tokenizerFile.resolveSibling(FILE_NAME);
        return Files.isRegularFile(file) ? Optional.of(read(TokenizerJson.read(file))) : Optional.empty();
    }

    static TokenizerConfig read(TokenizerJson json) {
        return new TokenizerConfig(json.source, token(json, "bos_token"), token(json, "eos_token"),
                flag(json, "add_bos_token"), flag(json, "add_eos_token"));
    }

    private static Named token(TokenizerJson json, String field) {
        if (!json.root.has(field)) {
            return null;
        }
        JsonNode node = json.root.get(field);
        if (node.isNull()) {
            return new Named(null);
        }
        if (node.isTextual()) {
            return new Named(node.textValue());
        }
        if (node.isObject()) {
            return new Named(json.text(node, "content", field + ".content"));
        }
        throw json.fail(field, "is " + TokenizerJson.abbreviate(node), "a token string, an AddedToken object with its content, or null");
    }

    private static Boolean flag(TokenizerJson json, String field) {
        return json.root.has(field) ? json.bool(json.root, field, field) : null;
    }
}
