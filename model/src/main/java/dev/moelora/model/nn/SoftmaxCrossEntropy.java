package dev.moelora.model.nn;

/**
 * Softmax cross-entropy over one group of logits (the choices of one question, the classes of
 * one example, or the vocabulary of one next-token prediction), forward and backward in one call
 * and one exp per logit, on plain arrays in double.
 */
public final class SoftmaxCrossEntropy {
    private SoftmaxCrossEntropy() {}

    /**
     * @param logits    the group's logits at {@code [offset, offset + n)}
     * @param target    index of the correct entry within the group
     * @param dLogits   receives {@code scale * (softmax - onehot)} at the same positions; null for the
     *                  loss alone; may be {@code logits} itself
     * @return the loss {@code -log softmax(logits)[target]}
     */
    public static double forwardBackward(double[] logits, int offset, int n, int target, double[] dLogits, double scale) {
        if (target < 0 || target >= n) throw new IllegalArgumentException("target " + target + " outside a group of " + n);
        double max = Double.NEGATIVE_INFINITY, picked = logits[offset + target];
        for (int i = 0; i < n; i++) max = Math.max(max, logits[offset + i]);
        double sum = 0;
        if (dLogits == null) {
            for (int i = 0; i < n; i++) sum += Math.exp(logits[offset + i] - max);
        } else {
            for (int i = 0; i < n; i++) sum += dLogits[offset + i] = Math.exp(logits[offset + i] - max); // one exp per logit
            double toP = scale / sum;
            for (int i = 0; i < n; i++) dLogits[offset + i] *= toP;
            dLogits[offset + target] -= scale;
        }
        return Math.log(sum) + max - picked;
    }

    /** Index of the largest logit in the group (the first on ties). */
    public static int argmax(double[] logits, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (logits[offset + i] > logits[offset + best]) best = i;
        return best;
    }
}
