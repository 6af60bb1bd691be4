package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * SentencePiece's convention that a space is spelled {@code ▁} and starts the word it precedes, as
 * tokenizers' {@code Metaspace} pre-tokenizer and decoder implement it (the form newer LLaMA-family
 * files such as Mistral's use instead of a Prepend + Replace normalizer).
 *
 * <p>A piece of text after added-token splitting becomes words: spaces become the replacement
 * character, one is prepended depending on {@code prepend_scheme} ({@code always}; {@code first}: only
 * to the piece at the very start of the input; {@code never}), and with {@code split} the text is cut
 * before each replacement character. It must never touch added tokens, which are matched before it.
 *
 * @param replacement the code point spaces become, usually U+2581
 * @param scheme when a replacement character is prepended
 * @param split whether words are cut before each replacement character
 */
record Metaspace(int replacement, PrependScheme scheme, boolean split) {

    enum PrependScheme { ALWAYS, FIRST, NEVER }

    /** Reads a Metaspace pre-tokenizer or decoder; older files say {@code add_prefix_space} instead of {@code prepend_scheme}. */
    static Metaspace read(TokenizerJson json, JsonNode node, String path) {
        int replacement = json.character(node, "replacement", path + ".replacement");
        String schemeName = json.optionalText(node, "prepend_scheme", path + ".prepend_scheme");
        boolean addPrefixSpace = json.optionalBool(node, "add_prefix_space", path + ".add_prefix_space", true);
        PrependScheme scheme;
        if (schemeName == null) {
            scheme = addPrefixSpace ? PrependScheme.ALWAYS : PrependScheme.NEVER;
        } else {
            scheme = switch (schemeName) {
                case "always" -> PrependScheme.ALWAYS;
                case "first" -> PrependScheme.FIRST;
                case "never" -> PrependScheme.NEVER;
                default -> throw json.fail(path + ".prepend_scheme", "is \"" + schemeName + "\"", "\"always\", \"first\" or \"never\"");
            };
            if (!addPrefixSpace && scheme != PrependScheme.NEVER) {
                throw json.fail(path + ".add_prefix_space", "is false while prepend_scheme is \"" + schemeName + "\"",
                        "add_prefix_space false only with prepend_scheme \"never\"");
            }
        }
        return new Metaspace(replacement, scheme, json.optionalBool(node, "split", path + ".split", true));
    }

    /** The words of one piece; {@code atInputStart} says whether the piece begins the whole input. */
    List<String> words(String piece, boolean atInputStart) {
        String text = piece.replace(" ", Character.toString(replacement));
        boolean prepend = switch (scheme) {
            case ALWAYS -> true;
            case FIRST -> atInputStart;
            case NEVER -> false;
        };
        // tokenizers prepends nothing to an empty piece, and nothing to one that already starts with the replacement.
        if (prepend && !text.isEmpty() && text.codePointAt(0) != replacement) {
            text = Character.toString(replacement) + text;
        }
        List<String> words = new ArrayList<>();
        if (!split) {
            words.add(text);
            return words;
        }
        // tokenizers' MergedWithNext: each replacement character opens the next word; one directly followed
        // by another replacement character (or ending the text) is a word of its own.
        int start = 0;
        int replacementLength = Character.charCount(replacement);
        for (int i = text.indexOf(replacement); i >= 0; i = text.indexOf(replacement, i + replacementLength)) {
            if (i > start) {
                words.add(text.substring(start, i));
                start = i;
            }
        }
        if (start < text.length()) {
            words.add(text.substring(start));
        }
        return words;
    }

    /**
     * The Metaspace decoder step: the replacement becomes a space, except in the first token, where
     * (unless the scheme is {@code never}) every replacement character is dropped, as in the reference.
     */
    List<String> decode(List<String> tokens) {
        List<String> decoded = new ArrayList<>(tokens.size());
        for (int i = 0; i < tokens.size(); i++) {
            StringBuilder token = new StringBuilder();
            boolean dropReplacement = i == 0 && scheme != PrependScheme.NEVER;
            tokens.get(i).codePoints().forEach(c -> {
                if (c != replacement) {
                    token.appendCodePoint(c);
                } else if (!dropReplacement) {
                    token.append(' ');
                }
            });
            decoded.add(token.toString());
        }
        return decoded;
    }
}
