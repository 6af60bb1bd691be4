package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The {@code normalizer} section of a BPE {@code tokenizer.json}, as tokenizers applies it to each
 * stretch of text between added tokens: {@code Prepend}, {@code Replace} with a string pattern, the
 * Unicode forms {@code NFC}, {@code NFD}, {@code NFKC}, {@code NFKD} (Qwen2 uses NFC), and a
 * {@code Sequence} of them, in order; none at all when the file says {@code null}.
 *
 * <p>The Unicode forms are java.text.Normalizer's; they agree with the reference's
 * unicode-normalization crate except on characters assigned after the JDK's Unicode version. A
 * file naming any other normalizer is rejected when read, never normalized approximately.
 *
 * @param steps applied in order; empty for no normalizer
 */
record Normalizer(List<UnaryOperator<String>> steps) {

    private static final List<String> TYPES = List.of("Prepend", "Replace", "NFC", "NFD", "NFKC", "NFKD", "Sequence");

    Normalizer {
        steps = List.copyOf(steps);
    }

    boolean isNone() {
        return steps.isEmpty();
    }

    String apply(String text) {
        String normalized = text;
        for (UnaryOperator<String> step : steps) {
            normalized = step.apply(normalized);
        }
        return normalized;
    }

    /** Reads the normalizer at {@code path}; {@code node} null means none. */
    static Normalizer read(TokenizerJson json, JsonNode node, String path) {
        List<UnaryOperator<String>> steps = new ArrayList<>();
        if (node != null) {
            addSteps(json, node, path, steps);
        }
        return new Normalizer(steps);
    }

    private static void addSteps(TokenizerJson json, JsonNode node, String path, List<UnaryOperator<String>> steps) {
        switch (json.type(node, path, TYPES)) {
            case "Sequence" -> {
                JsonNode list = json.array(node, "normalizers", path + ".normalizers", "an array of normalizers");
                for (int i = 0; i < list.size(); i++) {
                    String stepPath = path + ".normalizers[" + i + "]";
                    JsonNode step = list.get(i);
                    if (!step.isObject()) {
                        throw json.fail(stepPath, "is " + TokenizerJson.abbreviate(step), "a normalizer object");
                    }
                    addSteps(json, step, stepPath, steps);
                }
            }
            case "Prepend" -> {
                String prefix = json.text(node, "prepend", path + ".prepend");
                // tokenizers prepends nothing to an empty string.
                steps.add(s -> s.isEmpty() ? s : prefix + s);
            }
            case "Replace" -> {
                String pattern = BpeDecoder.stringPattern(json, node, path);
                String content = json.text(node, "content", path + ".content");
                steps.add(s -> s.replace(pattern, content));
            }
            case "NFC" -> steps.add(s -> java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFC));
            case "NFD" -> steps.add(s -> java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFD));
            case "NFKC" -> steps.add(s -> java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFKC));
            default -> steps.add(s -> java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFKD));
        }
    }
}
