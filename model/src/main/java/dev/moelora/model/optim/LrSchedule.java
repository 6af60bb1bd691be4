package dev.moelora.model.optim;

/**
 * Learning rate per step: linear warm-up from 0 over {@code warmup} steps, then linear or cosine
 * decay to 0 at {@code total} steps (Hugging Face's get_linear/cosine_schedule_with_warmup).
 */
public record LrSchedule(double peak, int warmup, int total, Decay decay) {
    public enum Decay { LINEAR, COSINE, CONSTANT }

    public LrSchedule {
        if (total < 1) throw new IllegalArgumentException("train.steps must be >= 1, got " + total);
        if (warmup < 0 || warmup > total) throw new IllegalArgumentException("train.warmup-steps must be in [0, steps], got " + warmup);
    }

    /** The rate for step s, counted from 0. */
    public double at(int s) {
        if (s < warmup) return peak * (s + 1) / warmup;
        double progress = (double) (s - warmup) / Math.max(1, total - warmup);
        return switch (decay) {
            case LINEAR -> peak * Math.max(0.0, 1.0 - progress);
            case COSINE -> peak * 0.5 * (1.0 + Math.cos(Math.PI * Math.min(1.0, progress)));
            case CONSTANT -> peak;
        };
    }
}
