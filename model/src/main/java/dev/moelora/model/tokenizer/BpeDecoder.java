package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code decoder} section of a BPE {@code tokenizer.json}: turns tokens back into text through the
 * steps tokenizers defines for GPT-2-style files ({@code ByteLevel}) and SentencePiece-style ones
 * ({@code Replace}, {@code ByteFallback}, {@code Fuse}, {@code Strip}, {@code Metaspace}), each applied
 * to the whole token list in turn as tokenizers' {@code decode_chain} does, the results then joined.
 * Without a decoder the tokens are joined with spaces, as in tokenizers.
 *
 * <p>It sees tokens, never ids, and must never approximate a step: a file naming any other step, or a
 * regex pattern, is rejected when read.
 */
final class BpeDecoder {

    private static final List<String> STEP_TYPES = List.of("ByteLevel", "Metaspace", "Replace", "ByteFallback", "Fuse", "Strip");

    private sealed interface Step permits ByteLevelStep, MetaspaceStep, Replace, ByteFallback, Fuse, Strip {
        List<String> apply(List<String> tokens);
    }

    private record ByteLevelStep() implements Step {
        @Override
        public List<String> apply(List<String> tokens) {
            return List.of(ByteLevel.decode(tokens));
        }
    }

    private record MetaspaceStep(Metaspace metaspace) implements Step {
        @Override
        public List<String> apply(List<String> tokens) {
            return metaspace.decode(tokens);
        }
    }

    private record Replace(String pattern, String content) implements Step {
        @Override
        public List<String> apply(List<String> tokens) {
            return tokens.stream().map(t -> t.replace(pattern, content)).toList();
        }
    }

    /**
     * Runs of {@code <0xNN>} tokens become the text their bytes spell; a run that is not valid UTF-8
     * becomes one U+FFFD per byte (not per invalid sequence, unlike ByteLevel), as in the reference.
     */
    private record ByteFallback() implements Step {
        @Override
        public List<String> apply(List<String> tokens) {
            List<String> result = new ArrayList<>(tokens.size());
            byte[] run = new byte[tokens.size()];
            int runLength = 0;
            for (String token : tokens) {
                int b = byteValue(token);
                if (b >= 0) {
                    run[runLength++] = (byte) b;
                    continue;
                }
                flush(run, runLength, result);
                runLength = 0;
                result.add(token);
            }
            flush(run, runLength, result);
            return result;
        }

        /** The byte of a {@code <0xNN>} token (hex digits of either case, as Rust's from_str_radix), or -1. */
        private static int byteValue(String token) {
            if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') {
                return -1;
            }
            int high = asciiHexDigit(token.charAt(3));
            int low = asciiHexDigit(token.charAt(4));
            return high < 0 || low < 0 ? -1 : high * 16 + low;
        }

        /** Only ASCII: Character.digit would also accept fullwidth and other Unicode digits. */
        private static int asciiHexDigit(char c) {
            if (c >= '0' && c <= '9') {
                return c - '0';
            }
            if (c >= 'a' && c <= 'f') {
                return c - 'a' + 10;
            }
            return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        }

        private static void flush(byte[] run, int length, List<String> result) {
            if (length == 0) {
                return;
            }
            try {
                result.add(StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(run, 0, length))
                        .toString());
            } catch (CharacterCodingException e) {
                result.add("\uFFFD".repeat(length));
            }
        }
    }

    private record Fuse() implements Step {
        @Override
        public List<String> apply(List<String> tokens) {
            return List.of(String.join("", tokens));
        }
    }

    /** Removes up to {@code start} leading and {@code stop} trailing occurrences of {@code content} from each token. */
    private record Strip(int content, int start, int stop) implements Step {
        @Override
        public List<String> apply(List<String> tokens) {
            return tokens.stream().map(this::strip).toList();
        }

        private String strip(String token) {
            int[] chars = token.codePoints().toArray();
            int from = 0;
            while (from < start && from < chars.length && chars[from] == content) {
                from++;
            }
            int to = chars.length;
            while (chars.length - to < stop && to > from && chars[to - 1] == content) {
                to--;
            }
            return new String(chars, from, to - from);
        }
    }

    /** Empty when the file has no decoder. */
    private final List<Step> steps;
    private final boolean present;

    private BpeDecoder(List<Step> steps, boolean present) {
        this.steps = steps;
        this.present = present;
    }

    /** Reads {@code decoder}, which may be null (tokens joined with spaces). */
    static BpeDecoder read(TokenizerJson json, JsonNode decoder) {
        if (decoder == null) {
            return new BpeDecoder(List.of(), false);
        }
        List<Step> steps = new ArrayList<>();
        if ("Sequence".equals(decoder.path("type").textValue())) {
            JsonNode list = json.array(decoder, "decoders", "decoder.decoders", "an array of decoders");
            for (int i = 0; i < list.size(); i++) {
                steps.add(step(json, list.get(i), "decoder.decoders[" + i + "]"));
            }
        } else {
            steps.add(step(json, decoder, "decoder"));
        }
        return new BpeDecoder(List.copyOf(steps), true);
    }

    String decode(List<String> tokens) {
        if (!present) {
            return String.join(" ", tokens);
        }
        List<String> current = tokens;
        for (Step step : steps) {
            current = step.apply(current);
        }
        return String.join("", current);
    }

    private static Step step(TokenizerJson json, JsonNode node, String path) {
        if (!node.isObject()) {
            throw json.fail(path, "is " + TokenizerJson.abbreviate(node), "a decoder object, one of " + STEP_TYPES);
        }
        return switch (json.type(node, path, STEP_TYPES)) {
            case "ByteLevel" -> new ByteLevelStep();
            case "Metaspace" -> new MetaspaceStep(Metaspace.read(json, node, path));
            case "Replace" -> new Replace(stringPattern(json, node, path), json.text(node, "content", path + ".content"));
            case "ByteFallback" -> new ByteFallback();
            case "Fuse" -> new Fuse();
            case "Strip" -> new Strip(json.character(node, "content", path + ".content"),
                    json.nonNegativeInt(node, "start", path + ".start"), json.nonNegativeInt(node, "stop", path + ".stop"));
            default -> throw new IllegalStateException("type() admitted an unhandled decoder at " + path);
        };
    }

    /** A Replace pattern, which must be {@code {"String": ...}}; regex patterns are not implemented. */
    static String stringPattern(TokenizerJson json, JsonNode node, String path) {
        JsonNode pattern = json.object(node, "pattern", path + ".pattern", "{\"String\": ...}");
        JsonNode literal = pattern.get("String");
        if (pattern.size() != 1 || literal == null || !literal.isTextual() || literal.textValue().isEmpty()) {
            throw json.fail(path + ".pattern", "is " + TokenizerJson.abbreviate(pattern),
                    "{\"String\": \"...\"} with a non-empty string (Regex patterns are not implemented)");
        }
        return literal.textValue();
    }
}
