package dev.moelora.model.task;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.bert.BertEncoder;
import dev.moelora.model.bert.TokenBatch;
import dev.moelora.model.data.Example;
import dev.moelora.model.data.Task;
import dev.moelora.model.data.TaskFormat;
import dev.moelora.model.nn.MeanPool;
import dev.moelora.model.nn.Slab;
import dev.moelora.model.nn.SoftmaxCrossEntropy;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.tokenizer.Encoding;
import dev.moelora.model.tokenizer.WordPieceTokenizer;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A frozen encoder with its adapters, mean pooling and the task heads: turns a batch of labelled
 * examples into sequences, computes the loss, and back-propagates it into the adapters and heads.
 * A multiple-choice example becomes one (question, choice) pair per choice, scored and
 * soft-maxed over its choices; a classification example becomes one sequence and a softmax over
 * its task's labels. The training step in one place; what is trained is decided elsewhere.
 */
public final class TaskModel {
    /** One example of a batch: where its sequences start, how many, and how it is answered. */
    public record Item(Task task, Example example) {}

    private final BertEncoder encoder;
    private final Adapters adapters;
    private final boolean trainsEncoder; // false for a linear probe: nothing inside the encoder to back-propagate into
    private final TaskHeads heads;
    private final WordPieceTokenizer tokenizer;
    private final int maxLength;
    private final int maxSequences;
    private final Slab pool, pooled, dPooled, dHidden, scores, dScores, logits, dLogits;
    private final int hidden;
    private final int maxLabels;

    /**
     * @param maxExamples largest batch of examples; with maxChoices this sizes every buffer once
     * @param maxChoices  largest number of choices of a multiple-choice example
     */
    public TaskModel(BertEncoder encoder, Adapters adapters, TaskHeads heads, WordPieceTokenizer tokenizer, int maxLength,
                     int maxExamples, int maxChoices, int maxLabels) {
        this.encoder = encoder;
        this.adapters = adapters;
        this.trainsEncoder = !adapters.parameters().isEmpty();
        this.heads = heads;
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
        this.hidden = encoder.config().hidden();
        this.maxLabels = Math.max(2, maxLabels);
        this.maxSequences = maxExamples * Math.max(1, maxChoices);
        var dt = encoder.dataType();
        encoder.reserve(maxSequences, maxLength);
        pool = new Slab("pool", dt, (long) maxSequences * maxSequences * maxLength); // (S, S*T)
        pooled = new Slab("pooled", dt, (long) maxSequences * hidden);                // (S, C)
        dPooled = new Slab("dPooled", dt, (long) maxSequences * hidden);              // (S, C)
        dHidden = new Slab("dHidden", dt, (long) maxSequences * maxLength * hidden);  // (S*T, C)
        scores = new Slab("scores", dt, maxSequences);                                // (S, 1)
        dScores = new Slab("dScores", dt, maxSequences);                              // (S, 1)
        logits = new Slab("logits", dt, (long) maxSequences * this.maxLabels);       // (S, K)
        dLogits = new Slab("dLogits", dt, (long) maxSequences * this.maxLabels);     // (S, K)
    }

    public BertEncoder encoder() { return encoder; }
    public Adapters adapters() { return adapters; }
    public TaskHeads heads() { return heads; }
    public int maxLength() { return maxLength; }

    /** The result of a forward pass over a batch: the loss and each example's predicted answer. */
    public record Outcome(double loss, int[] predictions, int[] answers, int tokens) {}

    /** Tokenizes and pads a batch of examples into sequences. */
    TokenBatch tokenize(List<Item> items, int[] groupStart) {
        int s = 0;
        Encoding[] enc = new Encoding[maxSequences];
        for (int e = 0; e < items.size(); e++) {
            Item item = items.get(e);
            groupStart[e] = s;
            if (item.task().format() == TaskFormat.MULTIPLE_CHOICE) {
                for (String choice : item.example().choices()) {
                    requireRoom(s, items.size());
                    enc[s++] = tokenizer.encodePair(item.example().question(), choice, maxLength);
                }
            } else {
                requireRoom(s, items.size());
                enc[s++] = tokenizer.encode(item.example().question(), maxLength);
            }
        }
        groupStart[items.size()] = s;
        int T = 0;
        for (int i = 0; i < s; i++) T = Math.max(T, enc[i].length());
        int[] ids = new int[s * T], types = new int[s * T];
        float[] mask = new float[s * T];
        for (int i = 0; i < s; i++) {
            int[] seqIds = enc[i].ids(), seqTypes = enc[i].typeIds();
            for (int t = 0; t < seqIds.length; t++) {
                ids[i * T + t] = seqIds[t];
                types[i * T + t] = seqTypes[t];
                mask[i * T + t] = 1f;
            }
            for (int t = seqIds.length; t < T; t++) ids[i * T + t] = tokenizer.padId();
        }
        return new TokenBatch(s, T, ids, types, mask);
    }

    private void requireRoom(int s, int examples) {
        if (s >= maxSequences) {
            throw new IllegalArgumentException("a batch of " + examples + " examples needs more than the " + maxSequences
                    + " sequences this model was sized for (batch size x most choices)");
        }
    }

    /** Forward only: loss and predictions, no gradients. */
    public Outcome evaluate(List<Item> items) {
        return run(items, false, 0);
    }

    /**
     * Forward and backward: adds {@code lossScale * dLoss} to every trainable parameter's
     * gradient, where loss is the mean cross-entropy over the batch's examples.
     */
    public Outcome trainStep(List<Item> items, double lossScale) {
        return run(items, true, lossScale);
    }

    private Outcome run(List<Item> items, boolean backward, double lossScale) {
        int E = items.size();
        int[] groupStart = new int[E + 1];
        TokenBatch batch = tokenize(items, groupStart);
        int S = batch.batch(), T = batch.tokens();
        adapters.setRowMask(batch.mask());
        INDArray hiddenStates = encoder.forward(batch);
        INDArray poolW = pool.view(S, (long) S * T);
        MeanPool.weights(batch.mask(), S, T, poolW);
        INDArray pooledV = pooled.view(S, hidden);
        MeanPool.forward(poolW, hiddenStates, pooledV);

        INDArray scoresV = scores.view(S, 1);
        Nd4j.gemm(pooledV, heads.choiceWeight().value(), scoresV, false, false, 1.0, 0.0);
        scoresV.addi(heads.choiceBias().value().getDouble(0));
        INDArray dScoresV = dScores.view(S, 1).assign(0.0);
        INDArray dPooledV = dPooled.view(S, hidden).assign(0.0);

        double loss = 0;
        int[] predictions = new int[E], answers = new int[E];
        double scale = 1.0 / E;
        double[] group = new double[maxLabelsOrChoices(items)];
        double[] dGroup = new double[group.length];
        for (int e = 0; e < E; e++) {
            Item item = items.get(e);
            int start = groupStart[e], n = item.example().choices().size();
            answers[e] = item.example().answer();
            if (item.task().format() == TaskFormat.MULTIPLE_CHOICE) {
                for (int i = 0; i < n; i++) group[i] = scoresV.getDouble(start + i, 0);
                loss += scale * SoftmaxCrossEntropy.forwardBackward(group, 0, n, answers[e], dGroup, scale * lossScale);
                predictions[e] = SoftmaxCrossEntropy.argmax(group, 0, n);
                if (backward) for (int i = 0; i < n; i++) dScoresV.putScalar(start + i, 0, dGroup[i]);
            } else {
                Parameter[] head = heads.classifier(item.task().name());
                INDArray row = pooledV.getRow(start, true);                 // (1, C)
                INDArray rowLogits = logits.view(1, n);
                Nd4j.gemm(row, head[0].value(), rowLogits, false, true, 1.0, 0.0);
                rowLogits.addi(head[1].value());
                for (int i = 0; i < n; i++) group[i] = rowLogits.getDouble(0, i);
                loss += scale * SoftmaxCrossEntropy.forwardBackward(group, 0, n, answers[e], dGroup, scale * lossScale);
                predictions[e] = SoftmaxCrossEntropy.argmax(group, 0, n);
                if (backward) {
                    INDArray d = dLogits.view(1, n);
                    for (int i = 0; i < n; i++) d.putScalar(0, i, dGroup[i]);
                    Nd4j.gemm(d, row, head[0].grad(), true, false, 1.0, 1.0);   // dW += d^T row
                    head[1].grad().addi(d);
                    Nd4j.gemm(d, head[0].value(), dPooledV.getRow(start, true), false, false, 1.0, 1.0);
                }
            }
        }
        if (backward) {
            Nd4j.gemm(pooledV, dScoresV, heads.choiceWeight().grad(), true, false, 1.0, 1.0);
            heads.choiceBias().grad().addi(dScoresV.sumNumber().doubleValue());
            Nd4j.gemm(dScoresV, heads.choiceWeight().value(), dPooledV, false, true, 1.0, 1.0);
            INDArray dHiddenV = dHidden.view((long) S * T, hidden);
            MeanPool.backward(poolW, dPooledV, dHiddenV);
            if (trainsEncoder) encoder.backward(dHiddenV);
        }
        return new Outcome(loss, predictions, answers, countTokens(batch));
    }

    private int maxLabelsOrChoices(List<Item> items) {
        int n = 2;
        for (Item i : items) n = Math.max(n, i.example().choices().size());
        return n;
    }

    private static int countTokens(TokenBatch batch) {
        int n = 0;
        for (float m : batch.mask()) if (m != 0f) n++;
        return n;
    }
}
