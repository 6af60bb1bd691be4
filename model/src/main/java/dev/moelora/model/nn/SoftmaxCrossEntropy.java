package dev.moelora.model.nn;

/**
 * Softmax cross-entropy over one group of logits (the choices of one question, or the classes
 * of one example), forward and backward in one call. Groups are tiny, so this runs on plain
 * arrays in double.
 */
public final class SoftmaxCrossEntropy {
    private SoftmaxCrossEntropy() {}

    /**
     * @param logits    the group's logits at {@code [offset, offset + n)}
     * @param target    index of the correct entry within the group
     * @param dLogits   receives {@code scale * (softmax - onehot)} at the same positions
     * @return the loss {@code -log softmax(logits)[target]}
     */
    public static double forwardBackward(double[] logits, int offset, int n, int target, double[] dLogits, double scale) {
        if (target < 0 || target >= n) throw new IllegalArgumentException("target " + target + " outside a group of " + n);
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[offset + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[offset + i] - max);
        double logSum = Math.log(sum) + max;
        if (dLogits != null) {
            for (int i = 0; i < n; i++) {
                double p = Math.exp(logits[offset + i] - logSum);
                dLogits[offset + i] = scale * (p - (i == target ? 1.0 : 0.0));
            }
        }
        return logSum - logits[offset + target];
    }

    /** Index of the largest logit in the group (the first on ties). */
    public static int argmax(double[] logits, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (logits[offset + i] > logits[offset + best]) best = i;
        return best;
    }
}
