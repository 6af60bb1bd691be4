package dev.moelora.model.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * GPT-2's byte-level alphabet and word split, as tokenizers' ByteLevel pre-tokenizer and decoder use
 * them: each UTF-8 byte is spelled as one printable character (GPT-2's {@code bytes_to_unicode}), so a
 * vocabulary holding those 256 characters can spell any text and nothing is ever unknown.
 *
 * <p>It must never be applied to added tokens (they are matched before it and keep their spelling),
 * nor twice to the same text: the alphabet's characters are themselves text that would be re-encoded.
 */
final class ByteLevel {

    /**
     * GPT-2's pre-tokenization regex. {@code \s}, {@code \p{L}} and {@code \p{N}} are meant in their
     * Unicode sense, as in the reference's Oniguruma; Java's {@code \s} is ASCII-only unless asked.
     */
    private static final Pattern SPLIT = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** The character spelling each byte, {@code (256)}. */
    private static final char[] CHAR_OF_BYTE = new char[256];
    /** The byte each alphabet character spells, -1 for characters outside the alphabet; the alphabet ends at U+0143. */
    private static final int[] BYTE_OF_CHAR = new int[0x144];

    static {
        // Printable Latin-1 bytes spell themselves; the other 68 (controls, space, NBSP, soft hyphen)
        // take U+0100 onwards in byte order, which is why a space appears as 'Ġ' (U+0120) in vocabularies.
        Arrays.fill(BYTE_OF_CHAR, -1);
        int shifted = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = (char) (printable ? b : 256 + shifted++);
            CHAR_OF_BYTE[b] = c;
            BYTE_OF_CHAR[c] = b;
        }
    }

    private ByteLevel() {
    }

    /** The alphabet character spelling byte {@code b} (0..255). */
    static char charOf(int b) {
        return CHAR_OF_BYTE[b];
    }

    /**
     * The words of one piece of text, already spelled in the byte alphabet: an optional leading space
     * (unless the piece starts with one), then GPT-2's regex split, or the whole piece without it.
     */
    static List<String> words(String piece, boolean addPrefixSpace, boolean useRegex) {
        String text = addPrefixSpace && !piece.isEmpty() && !piece.startsWith(" ") ? " " + piece : piece;
        List<String> words = new ArrayList<>();
        if (!useRegex) {
            words.add(spell(text));
            return words;
        }
        Matcher matcher = SPLIT.matcher(text);
        int end = 0;
        while (matcher.find()) {
            // The alternatives cover every character, so there are no gaps; if there were, the reference keeps them as words.
            if (matcher.start() > end) {
                words.add(spell(text.substring(end, matcher.start())));
            }
            words.add(spell(matcher.group()));
            end = matcher.end();
        }
        if (end < text.length()) {
            words.add(spell(text.substring(end)));
        }
        return words;
    }

    /**
     * Joins tokens back into text: each token's alphabet characters become their bytes, a token with
     * any character outside the alphabet (an added token such as {@code <|endoftext|>}) contributes its
     * own UTF-8 bytes, and the bytes are decoded with each invalid sequence replaced by U+FFFD, as
     * Rust's {@code String::from_utf8_lossy} does.
     */
    static String decode(List<String> tokens) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (String token : tokens) {
            byte[] spelled = unspell(token);
            bytes.writeBytes(spelled != null ? spelled : token.getBytes(StandardCharsets.UTF_8));
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    private static String spell(String text) {
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        char[] spelled = new char[utf8.length];
        for (int i = 0; i < utf8.length; i++) {
            spelled[i] = CHAR_OF_BYTE[utf8[i] & 0xFF];
        }
        return new String(spelled);
    }

    /** The bytes a token spells, or null when it has a character outside the alphabet. */
    private static byte[] unspell(String token) {
        byte[] bytes = new byte[token.length()];
        for (int i = 0; i < token.length(); i++) {
            char c = token.charAt(i);
            if (c >= BYTE_OF_CHAR.length || BYTE_OF_CHAR[c] < 0) {
                return null;
            }
            bytes[i] = (byte) BYTE_OF_CHAR[c];
        }
        return bytes;
    }
}
