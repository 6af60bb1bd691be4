package dev.moelora.model.moelora;

import static dev.moelora.model.nn.FiniteDifference.check;
import static dev.moelora.model.nn.FiniteDifference.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** The supervised-contrastive loss on hand-built features, and its gradient. */
class MoeLoraContrastiveTest {
    final SupervisedContrastive loss = new SupervisedContrastive("test", DataType.DOUBLE);

    /**
     * Two experts, features identical in direction within an expert (different lengths: the loss
     * normalises) and orthogonal across: each anchor sees its positive at sim 1/tau and two
     * negatives at 0, so L = -log(e^{1/tau} / (e^{1/tau} + 2)) = log(1 + 2 e^{-1/tau}).
     */
    @Test
    void identicalWithinAndOrthogonalAcrossExperts() {
        INDArray h = Nd4j.create(new double[][] {{2, 0, 0}, {0.5, 0, 0}, {0, 1, 0}, {0, 3, 0}});
        double tau = 0.5;
        double l = loss.lossAndGradient(h, new int[] {0, 0, 1, 1}, tau, Nd4j.create(DataType.DOUBLE, 4, 3));
        assertEquals(Math.log(1 + 2 * Math.exp(-1 / tau)), l, 1e-12);
    }

    /** A feature alone in its expert is no anchor, but is a negative for every other anchor. */
    @Test
    void aSingletonExpertIsOnlyANegative() {
        INDArray h = Nd4j.create(new double[][] {{1, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 1, 0}, {0, 0, 1}});
        double tau = 1;
        double l = loss.lossAndGradient(h, new int[] {0, 0, 1, 1, 2}, tau, Nd4j.create(DataType.DOUBLE, 5, 3));
        assertEquals(Math.log(1 + 3 * Math.exp(-1)), l, 1e-12);
    }

    /** With three positives of unequal similarity, L_i averages the log-probabilities of its positives. */
    @Test
    void positivesAreAveragedPerAnchor() {
        // anchor 0 = e1, positives e1 and e2 (label 0), negative e1 (label 1); tau 1
        INDArray h = Nd4j.create(new double[][] {{1, 0}, {1, 0}, {0, 1}, {1, 0}});
        int[] labels = {0, 0, 0, 1};
        double l = loss.lossAndGradient(h, labels, 1, Nd4j.create(DataType.DOUBLE, 4, 2));
        double e = Math.E;
        // anchors 0 and 1: sims to others (1, 0, 1) -> denominator 2e + 1; positives sims 1 and 0
        double l01 = -0.5 * ((1 - Math.log(2 * e + 1)) + (0 - Math.log(2 * e + 1)));
        // anchor 2: sims (0, 0, 0) -> denominator 3; positives sims 0 and 0
        double l2 = Math.log(3);
        assertEquals((2 * l01 + l2) / 3, l, 1e-12, "anchor 3 has no positive and is left out");
    }

    @Test
    void noAnchorWithAPositiveGivesZero() {
        INDArray dh = Nd4j.ones(DataType.DOUBLE, 2, 2);
        assertEquals(0.0, loss.lossAndGradient(Nd4j.create(new double[][] {{1, 0}, {0, 1}}), new int[] {0, 1}, 0.1, dh), 0.0);
        assertEquals(0.0, dh.amaxNumber().doubleValue(), 0.0);
    }

    @Test
    void gradientMatchesFiniteDifferences() {
        SplittableRandom random = new SplittableRandom(1);
        INDArray h = random(random, 7, 4), dh = Nd4j.create(DataType.DOUBLE, 7, 4);
        int[] labels = {0, 1, 0, 2, 1, 0, 3};
        loss.lossAndGradient(h, labels, 0.3, dh);
        INDArray analytic = dh.dup();
        check("supcon dh", h, analytic, () -> loss.lossAndGradient(h, labels, 0.3, Nd4j.create(DataType.DOUBLE, 7, 4)));
        assertTrue(analytic.amaxNumber().doubleValue() > 1e-3, "a gradient worth checking");
    }
}
