package dev.moelora.model.bert;

import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.nn.Attention;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.nn.Gelu;
import dev.moelora.model.nn.Init;
import dev.moelora.model.nn.LayerNorm;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.nn.LinearBlocks;
import dev.moelora.model.nn.Slab;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A BERT-family encoder (embeddings + LayerNorm, then L post-LN blocks of multi-head attention
 * and a GELU feed-forward), forward and backward. The base weights are frozen: backward yields
 * dL/d(input of each linear layer), which adapters decorating those layers turn into their own
 * gradients; nothing here ever writes a base weight.
 *
 * <p>Activations live in buffers sized once for (maxBatch, maxTokens) and are reused by every
 * step. Weight names and layouts are Hugging Face's ({@code encoder.layer.0.attention.self.query.weight},
 * (out, in)).
 */
public final class BertEncoder implements AdaptableModel {
    /** Positions of a block's linear layers in {@link #linears}. */
    private static final int QUERY = 0, KEY = 1, VALUE = 2, ATTN_OUT = 3, FFN_IN = 4, FFN_OUT = 5;
    private static final String[] MODULES = {
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense"};

    private final BertConfig config;
    private final DataType dtype;
    private final INDArray wordEmbeddings;     // (V, C)
    private final INDArray positionEmbeddings; // (P, C)
    private final INDArray typeEmbeddings;     // (types, C)
    private final INDArray embGamma, embBeta;  // (C)
    private final Linear[][] linears;          // [L][6]
    private final INDArray[] ln1Gamma, ln1Beta, ln2Gamma, ln2Beta; // [L] (C)
    private final LayerNorm layerNorm;

    private Activations acts;
    private int lastB, lastT;

    public BertEncoder(BertConfig config, Map<String, INDArray> weights) {
        this.config = config;
        int C = config.hidden(), L = config.layers(), F = config.intermediate();
        this.wordEmbeddings = take(weights, "embeddings.word_embeddings.weight", config.vocabSize(), C);
        this.dtype = wordEmbeddings.dataType();
        this.positionEmbeddings = take(weights, "embeddings.position_embeddings.weight", config.maxPositions(), C);
        this.typeEmbeddings = take(weights, "embeddings.token_type_embeddings.weight", config.typeVocabSize(), C);
        this.embGamma = take(weights, "embeddings.LayerNorm.weight", C).reshape(1, C);
        this.embBeta = take(weights, "embeddings.LayerNorm.bias", C).reshape(1, C);
        this.linears = new Linear[L][MODULES.length];
        this.ln1Gamma = new INDArray[L];
        this.ln1Beta = new INDArray[L];
        this.ln2Gamma = new INDArray[L];
        this.ln2Beta = new INDArray[L];
        for (int l = 0; l < L; l++) {
            String p = "encoder.layer." + l + ".";
            long[][] shapes = {{C, C}, {C, C}, {C, C}, {C, C}, {F, C}, {C, F}};
            for (int m = 0; m < MODULES.length; m++) {
                String name = p + MODULES[m];
                linears[l][m] = new FrozenLinear(name, take(weights, name + ".weight", shapes[m]),
                        take(weights, name + ".bias", shapes[m][0]));
            }
            ln1Gamma[l] = take(weights, p + "attention.output.LayerNorm.weight", C).reshape(1, C);
            ln1Beta[l] = take(weights, p + "attention.output.LayerNorm.bias", C).reshape(1, C);
            ln2Gamma[l] = take(weights, p + "output.LayerNorm.weight", C).reshape(1, C);
            ln2Beta[l] = take(weights, p + "output.LayerNorm.bias", C).reshape(1, C);
        }
        this.layerNorm = new LayerNorm(C, config.layerNormEps());
    }

    private INDArray take(Map<String, INDArray> weights, String name, long... shape) {
        INDArray w = weights.get(name);
        if (w == null) throw new IllegalArgumentException("BERT weights: missing tensor '" + name + "'");
        if (!Arrays.equals(w.shape(), shape)) {
            throw new IllegalArgumentException("BERT weights: tensor '" + name + "' has shape " + Arrays.toString(w.shape())
                    + ", expected " + Arrays.toString(shape) + " for " + config);
        }
        if (dtype != null && w.dataType() != dtype) {
            throw new IllegalArgumentException("BERT weights: tensor '" + name + "' is " + w.dataType() + ", the others " + dtype);
        }
        return w;
    }

    /** Random weights (std 0.02 like BERT's init, LayerNorm gamma near 1) for tests and benchmarks. */
    public static BertEncoder random(BertConfig config, DataType dtype, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, INDArray> w = new TreeMap<>();
        int C = config.hidden(), F = config.intermediate();
        w.put("embeddings.word_embeddings.weight", Init.normal(random, dtype, 0.5, config.vocabSize(), C));
        w.put("embeddings.position_embeddings.weight", Init.normal(random, dtype, 0.5, config.maxPositions(), C));
        w.put("embeddings.token_type_embeddings.weight", Init.normal(random, dtype, 0.5, config.typeVocabSize(), C));
        w.put("embeddings.LayerNorm.weight", Init.normal(random, dtype, 0.1, C).addi(1.0));
        w.put("embeddings.LayerNorm.bias", Init.normal(random, dtype, 0.1, C));
        for (int l = 0; l < config.layers(); l++) {
            String p = "encoder.layer." + l + ".";
            long[][] shapes = {{C, C}, {C, C}, {C, C}, {C, C}, {F, C}, {C, F}};
            for (int m = 0; m < MODULES.length; m++) {
                w.put(p + MODULES[m] + ".weight", Init.normal(random, dtype, 1.0 / Math.sqrt(shapes[m][1]), shapes[m]));
                w.put(p + MODULES[m] + ".bias", Init.normal(random, dtype, 0.1, shapes[m][0]));
            }
            for (String ln : List.of("attention.output.LayerNorm", "output.LayerNorm")) {
                w.put(p + ln + ".weight", Init.normal(random, dtype, 0.1, C).addi(1.0));
                w.put(p + ln + ".bias", Init.normal(random, dtype, 0.1, C));
            }
        }
        return new BertEncoder(config, w);
    }

    public BertConfig config() { return config; }

    @Override public DataType dataType() { return dtype; }

    @Override
    public List<Linear> linears() {
        return LinearBlocks.list(linears);
    }

    @Override
    public void replace(Linear layer) {
        LinearBlocks.replace(linears, layer);
    }

    /** Sizes the activation buffers for batches up to maxBatch x maxTokens; the step loop then allocates nothing. */
    public void reserve(int maxBatch, int maxTokens) {
        if (maxTokens > config.maxPositions()) {
            throw new IllegalArgumentException("sequences of " + maxTokens + " tokens exceed the model's "
                    + config.maxPositions() + " positions");
        }
        if (acts == null || acts.maxB < maxBatch || acts.maxT < maxTokens) {
            acts = new Activations(Math.max(maxBatch, acts == null ? 0 : acts.maxB), Math.max(maxTokens, acts == null ? 0 : acts.maxT));
        }
    }

    /**
     * Runs the encoder on a batch and returns the final hidden states (B*T, C): a view of an
     * internal buffer, valid until the next forward.
     */
    public INDArray forward(TokenBatch batch) {
        int B = batch.batch(), T = batch.tokens(), N = batch.rows();
        int C = config.hidden(), F = config.intermediate(), H = config.heads(), D = C / H;
        reserve(B, T);
        for (int i = 0; i < N; i++) {
            if (batch.ids()[i] < 0 || batch.ids()[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + batch.ids()[i] + " at position " + i + " is outside the vocabulary of " + config.vocabSize());
            }
            if (batch.typeIds()[i] < 0 || batch.typeIds()[i] >= config.typeVocabSize()) {
                throw new IllegalArgumentException("token type " + batch.typeIds()[i] + " at position " + i + " is outside [0, " + config.typeVocabSize() + ")");
            }
        }
        Activations a = acts;
        lastB = B;
        lastT = T;

        // embeddings: word + position + type, then LayerNorm
        INDArray sum = a.sum.view(N, C), scratch = a.scratchC.view(N, C);
        Nd4j.pullRows(wordEmbeddings, sum, 1, batch.ids());
        Nd4j.pullRows(typeEmbeddings, scratch, 1, batch.typeIds());
        sum.addi(scratch);
        int[] positions = new int[N];
        for (int i = 0; i < N; i++) positions[i] = i % T;
        Nd4j.pullRows(positionEmbeddings, scratch, 1, positions);
        sum.addi(scratch);
        layerNorm.forward(sum, embGamma, embBeta, a.hidden[0].view(N, C), scratch, a.stat1.view(N, 1));

        INDArray keyBias = a.keyBias.view(B, T);
        for (int i = 0; i < N; i++) keyBias.putScalar(i / T, i % T, batch.mask()[i] != 0f ? 0.0 : Attention.MASKED);

        for (int l = 0; l < config.layers(); l++) {
            Layer c = a.layers[l];
            INDArray x = a.hidden[l].view(N, C);
            INDArray q = c.q.view(N, C), k = c.k.view(N, C), v = c.v.view(N, C), ctx = c.ctx.view(N, C);
            linears[l][QUERY].forward(x, q);
            linears[l][KEY].forward(x, k);
            linears[l][VALUE].forward(x, v);
            Attention.forward(q, k, v, keyBias, B, T, H, c.att.view(B, H, T, T), a.heads.view(B, H, T, D), ctx);
            linears[l][ATTN_OUT].forward(ctx, sum);
            sum.addi(x);
            INDArray x1 = c.x1.view(N, C);
            layerNorm.forward(sum, ln1Gamma[l], ln1Beta[l], x1, c.xhat1.view(N, C), c.rstd1.view(N, 1));
            INDArray pre = c.ffPre.view(N, F), act = c.ffAct.view(N, F);
            linears[l][FFN_IN].forward(x1, pre);
            Gelu.forward(pre, act, c.ffCdf.view(N, F));
            linears[l][FFN_OUT].forward(act, sum);
            sum.addi(x1);
            layerNorm.forward(sum, ln2Gamma[l], ln2Beta[l], a.hidden[l + 1].view(N, C), c.xhat2.view(N, C), c.rstd2.view(N, 1));
        }
        return a.hidden[config.layers()].view(N, C);
    }

    /**
     * Back-propagates dL/d(final hidden) (B*T, C) of the last forward through every block, so
     * that adapters accumulate their gradients. The embeddings are frozen: nothing flows into them.
     */
    public void backward(INDArray dHidden) {
        int B = lastB, T = lastT, N = B * T;
        int C = config.hidden(), F = config.intermediate(), H = config.heads(), D = C / H;
        if (acts == null || N == 0) throw new IllegalStateException("backward before forward");
        if (dHidden.size(0) != N || dHidden.size(1) != C) {
            throw new IllegalArgumentException("dHidden " + Arrays.toString(dHidden.shape()) + " does not match the last forward (" + N + ", " + C + ")");
        }
        Activations a = acts;
        INDArray dNext = a.dNext.view(N, C).assign(dHidden);
        INDArray dSum = a.dSum.view(N, C), dX1 = a.dX1.view(N, C), dCtx = a.dCtx.view(N, C);
        INDArray dq = a.dq.view(N, C), dk = a.dk.view(N, C), dv = a.dv.view(N, C);
        INDArray dF = a.dF.view(N, F), dF2 = a.dF2.view(N, F);
        for (int l = config.layers() - 1; l >= 0; l--) {
            Layer c = a.layers[l];
            layerNorm.backward(dNext, ln2Gamma[l], c.xhat2.view(N, C), c.rstd2.view(N, 1), dSum);
            linears[l][FFN_OUT].backward(dSum, dF, false);
            Gelu.backward(dF, c.ffPre.view(N, F), c.ffCdf.view(N, F), dF2);
            linears[l][FFN_IN].backward(dF2, dX1, false);
            dX1.addi(dSum);
            layerNorm.backward(dX1, ln1Gamma[l], c.xhat1.view(N, C), c.rstd1.view(N, 1), dSum);
            linears[l][ATTN_OUT].backward(dSum, dCtx, false);
            Attention.backward(dCtx, c.q.view(N, C), c.k.view(N, C), c.v.view(N, C), c.att.view(B, H, T, T), B, T, H,
                    a.datt.view(B, H, T, T), a.heads.view(B, H, T, D), dq, dk, dv);
            linears[l][QUERY].backward(dq, dNext, false);
            linears[l][KEY].backward(dk, dNext, true);
            linears[l][VALUE].backward(dv, dNext, true);
            dNext.addi(dSum);
        }
    }

    /** One block's saved activations. */
    private static final class Layer {
        final Slab q, k, v, ctx, x1, xhat1, xhat2; // (N, C)
        final Slab rstd1, rstd2;                   // (N, 1)
        final Slab ffPre, ffCdf, ffAct;            // (N, F)
        final Slab att;                            // (B, H, T, T)

        Layer(int l, DataType dt, long n, long c, long f, long heads, long b, long t) {
            String p = "layer" + l + ".";
            q = new Slab(p + "q", dt, n * c);
            k = new Slab(p + "k", dt, n * c);
            v = new Slab(p + "v", dt, n * c);
            ctx = new Slab(p + "ctx", dt, n * c);
            x1 = new Slab(p + "x1", dt, n * c);
            xhat1 = new Slab(p + "xhat1", dt, n * c);
            xhat2 = new Slab(p + "xhat2", dt, n * c);
            rstd1 = new Slab(p + "rstd1", dt, n);
            rstd2 = new Slab(p + "rstd2", dt, n);
            ffPre = new Slab(p + "ffPre", dt, n * f);
            ffCdf = new Slab(p + "ffCdf", dt, n * f);
            ffAct = new Slab(p + "ffAct", dt, n * f);
            att = new Slab(p + "att", dt, b * heads * t * t);
        }
    }

    /** Every buffer of a forward and backward, sized for (maxB, maxT). */
    private final class Activations {
        final int maxB, maxT;
        final Slab[] hidden; // [L + 1] (N, C): block inputs, then the final output
        final Layer[] layers;
        final Slab sum, scratchC, dNext, dSum, dX1, dCtx, dq, dk, dv; // (N, C)
        final Slab stat1;         // (N, 1)
        final Slab dF, dF2;       // (N, F)
        final Slab keyBias;       // (B, T)
        final Slab heads;         // (B, H, T, D)
        final Slab datt;          // (B, H, T, T)

        Activations(int maxB, int maxT) {
            this.maxB = maxB;
            this.maxT = maxT;
            long n = (long) maxB * maxT, c = config.hidden(), f = config.intermediate(), h = config.heads();
            DataType dt = dtype;
            hidden = new Slab[config.layers() + 1];
            for (int l = 0; l <= config.layers(); l++) hidden[l] = new Slab("hidden" + l, dt, n * c);
            layers = new Layer[config.layers()];
            for (int l = 0; l < config.layers(); l++) layers[l] = new Layer(l, dt, n, c, f, h, maxB, maxT);
            sum = new Slab("sum", dt, n * c);
            scratchC = new Slab("scratch", dt, n * c);
            dNext = new Slab("dNext", dt, n * c);
            dSum = new Slab("dSum", dt, n * c);
            dX1 = new Slab("dX1", dt, n * c);
            dCtx = new Slab("dCtx", dt, n * c);
            dq = new Slab("dq", dt, n * c);
            dk = new Slab("dk", dt, n * c);
            dv = new Slab("dv", dt, n * c);
            stat1 = new Slab("stat1", dt, n);
            dF = new Slab("dF", dt, n * f);
            dF2 = new Slab("dF2", dt, n * f);
            keyBias = new Slab("keyBias", dt, n);
            heads = new Slab("heads", dt, n * c);
            datt = new Slab("datt", dt, maxB * h * maxT * maxT);
        }
    }
}
