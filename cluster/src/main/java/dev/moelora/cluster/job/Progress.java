package dev.moelora.cluster.job;

import dev.moelora.model.train.Trainer.StepMetrics;
import java.io.PrintStream;
import java.util.Locale;

/**
 * The progress line of a training run: step, loss, tokens/s, ETA. On a terminal it redraws one
 * line; otherwise (CI logs, pipes) it prints a line every tenth of the run.
 */
public final class Progress {
    private final PrintStream out;
    private final boolean terminal;
    private final long started = System.nanoTime();
    private final int firstStep;
    private long tokens;
    private double smoothedLoss = Double.NaN;

    public Progress(PrintStream out, boolean terminal, int firstStep) {
        this.out = out;
        this.terminal = terminal;
        this.firstStep = firstStep;
    }

    public void onStep(StepMetrics m) {
        tokens += m.tokens();
        smoothedLoss = Double.isNaN(smoothedLoss) ? m.loss() : 0.9 * smoothedLoss + 0.1 * m.loss();
        double elapsed = (System.nanoTime() - started) / 1e9;
        int done = m.step() - firstStep;
        double eta = done == 0 ? 0 : elapsed / done * (m.steps() - m.step());
        int width = 24, filled = (int) Math.round(width * (double) m.step() / m.steps());
        String line = String.format(Locale.ROOT, "step %d/%d [%s%s] loss %.4f lr %.2e %.0f tok/s ETA %s",
                m.step(), m.steps(), "=".repeat(filled), " ".repeat(width - filled), smoothedLoss, m.lr(),
                tokens / Math.max(elapsed, 1e-9), duration(eta));
        if (terminal) {
            out.print("\r" + line + (m.step() == m.steps() ? "\n" : ""));
            out.flush();
        } else if (m.step() == m.steps() || m.step() % Math.max(1, m.steps() / 10) == 0 || m.step() == firstStep + 1) {
            out.println(line);
        }
    }

    public static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%dh%02dm", s / 3600, s / 60 % 60)
                : s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60) : s + "s";
    }
}
