package dev.moelora.model.lora;

import java.util.List;

/**
 * Which modules get a LoRA and how, with PEFT's semantics: a target {@code t} matches a module
 * named {@code n} when {@code n == t} or {@code n} ends with {@code "." + t}; a target written
 * {@code re:PATTERN} matches when the whole name matches the regular expression.
 *
 * @param rank    r
 * @param alpha   the scale is alpha / r
 * @param dropout dropout on the adapter branch's input during training, in [0, 1)
 */
public record LoraConfig(int rank, double alpha, double dropout, List<String> targets) {
    public LoraConfig {
        if (rank < 1) throw new IllegalArgumentException("adapter.rank must be >= 1, got " + rank);
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("adapter.dropout must be in [0, 1), got " + dropout);
        if (targets == null || targets.isEmpty()) throw new IllegalArgumentException("adapter.targets must name at least one module");
        targets = List.copyOf(targets);
    }

    public double scale() {
        return alpha / rank;
    }

    public boolean matches(String moduleName) {
        for (String t : targets) {
            if (t.startsWith("re:")) {
                if (moduleName.matches(t.substring(3))) return true;
            } else if (moduleName.equals(t) || moduleName.endsWith("." + t)) {
                return true;
            }
        }
        return false;
    }
}
