package dev.moelora.model.llama;

import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.nn.Init;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.nn.LinearBlocks;
import dev.moelora.model.nn.Slab;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * A LLaMA-family decoder ({@code LlamaForCausalLM}): token embeddings, then L pre-norm blocks
 * (RMSNorm, grouped-query causal attention with RoPE, residual; RMSNorm, SwiGLU MLP, residual),
 * a final RMSNorm and the LM head (tied to the embeddings or not). Forward gives next-token
 * logits; backward takes dL/dlogits down through every block so that adapters decorating the
 * projections accumulate their gradients. The base weights and embeddings are frozen: nothing
 * here ever writes a weight, and no gradient is computed for one.
 *
 * <p>Training activations live in buffers sized once by {@link #reserve} and reused by every
 * step. Generation runs the same blocks against a {@link KvCache}, which holds its own
 * preallocated keys, values and one block's worth of buffers. Weight and module names are
 * Hugging Face's ({@code model.layers.0.self_attn.q_proj}), so PEFT target names match.
 */
public final class LlamaDecoder implements AdaptableModel {
    /** Positions of a block's projections in {@link #linears}. */
    private static final int Q = 0, K = 1, V = 2, O = 3, GATE = 4, UP = 5, DOWN = 6;
    private static final String[] MODULES = {
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

    private final LlamaConfig config;
    private final DataType dtype;
    private final INDArray embedTokens;           // (V, C)
    private final INDArray lmHead;                // (V, C), embedTokens itself when tied
    private final INDArray[] inputNorm, postNorm; // [L] (1, C)
    private final INDArray finalNorm;             // (1, C)
    private final Linear[][] linears;             // [L][7]
    private final RmsNorm rmsNorm;

    private Activations acts;       // every block's activations, for training
    private Gradients grads;        // backward scratch, for training
    private int lastB, lastT;       // shape of the last training forward; 0 when backward has nothing to go back through
    private KvCache generationCache; // reused by generate() while it is large enough

    /**
     * @param weights every tensor of {@link LlamaConfig#weightShapes()}, in one floating-point type,
     *                and nothing else
     */
    public LlamaDecoder(LlamaConfig config, Map<String, INDArray> weights) {
        this.config = config;
        Map<String, long[]> shapes = config.weightShapes();
        for (String name : weights.keySet()) {
            if (!shapes.containsKey(name)) throw new IllegalArgumentException("LLaMA weights: unexpected tensor '" + name + "' for " + config);
        }
        this.dtype = weights.containsKey("model.embed_tokens.weight") ? weights.get("model.embed_tokens.weight").dataType() : null;
        Map<String, INDArray> w = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : shapes.entrySet()) w.put(e.getKey(), take(weights, e.getKey(), e.getValue()));
        int C = config.hidden(), L = config.layers();
        this.embedTokens = w.get("model.embed_tokens.weight");
        this.lmHead = config.tieWordEmbeddings() ? embedTokens : w.get("lm_head.weight");
        this.finalNorm = w.get("model.norm.weight").reshape(1, C);
        this.inputNorm = new INDArray[L];
        this.postNorm = new INDArray[L];
        this.linears = new Linear[L][MODULES.length];
        for (int l = 0; l < L; l++) {
            String p = "model.layers." + l + ".";
            inputNorm[l] = w.get(p + "input_layernorm.weight").reshape(1, C);
            postNorm[l] = w.get(p + "post_attention_layernorm.weight").reshape(1, C);
            for (int m = 0; m < MODULES.length; m++) linears[l][m] = new FrozenLinear(p + MODULES[m], w.get(p + MODULES[m] + ".weight"));
        }
        this.rmsNorm = new RmsNorm(C, config.rmsNormEps(), dtype);
    }

    private INDArray take(Map<String, INDArray> weights, String name, long[] shape) {
        INDArray t = weights.get(name);
        if (t == null) throw new IllegalArgumentException("LLaMA weights: missing tensor '" + name + "' for " + config);
        if (!Arrays.equals(t.shape(), shape)) {
            throw new IllegalArgumentException("LLaMA weights: tensor '" + name + "' has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(shape) + " for " + config);
        }
        if (t.dataType() != dtype || !(dtype == DataType.FLOAT || dtype == DataType.DOUBLE)) {
            throw new IllegalArgumentException("LLaMA weights: tensor '" + name + "' is " + t.dataType()
                    + "; all must be FLOAT or all DOUBLE (the embeddings are " + dtype + ")");
        }
        return t;
    }

    /**
     * Random weights for tests and benchmarks: projections N(0, 1/dIn), embeddings N(0, 0.25),
     * norm weights near 1.
     */
    public static Map<String, INDArray> randomWeights(LlamaConfig config, DataType dtype, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, INDArray> w = new LinkedHashMap<>();
        config.weightShapes().forEach((name, shape) -> w.put(name, shape.length == 1
                ? Init.normal(random, dtype, 0.1, shape).addi(1.0)
                : Init.normal(random, dtype, name.contains("embed_tokens") ? 0.5 : 1.0 / Math.sqrt(shape[1]), shape)));
        return w;
    }

    public static LlamaDecoder random(LlamaConfig config, DataType dtype, long seed) {
        return new LlamaDecoder(config, randomWeights(config, dtype, seed));
    }

    public LlamaConfig config() { return config; }

    @Override public DataType dataType() { return dtype; }

    @Override
    public List<Linear> linears() {
        return LinearBlocks.list(linears);
    }

    @Override
    public void replace(Linear layer) {
        LinearBlocks.replace(linears, layer);
    }

    /** Sizes the training buffers for batches up to maxBatch x maxTokens; the step loop then allocates nothing. */
    public void reserve(int maxBatch, int maxTokens) {
        if (maxTokens > config.maxPositions()) {
            throw new IllegalArgumentException("sequences of " + maxTokens + " tokens exceed the model's " + config.maxPositions() + " positions");
        }
        if (acts == null || acts.maxB < maxBatch || acts.maxT < maxTokens) {
            int b = Math.max(maxBatch, acts == null ? 0 : acts.maxB), t = Math.max(maxTokens, acts == null ? 0 : acts.maxT);
            acts = new Activations(b, t, t, config.layers(), b * t);
            grads = new Gradients(b, t);
        }
    }

    /**
     * Next-token logits (B*T, V) for a right-padded batch: row b * T + t predicts token t + 1 of
     * sequence b. A view of an internal buffer, valid until the next forward.
     */
    public INDArray forward(DecoderBatch batch) {
        checkIds(batch.ids());
        reserve(batch.batch(), batch.tokens());
        lastB = batch.batch();
        lastT = batch.tokens();
        return run(acts, batch.batch(), batch.tokens(), batch.ids(), batch.mask(), null);
    }

    private void checkIds(int[] ids) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + ids[i] + " at position " + i + " is outside the vocabulary of " + config.vocabSize());
            }
        }
    }

    /**
     * The blocks on B sequences of T tokens. Without a cache: a training forward at positions
     * 0..T-1, every block's activations kept, logits for every row. With one (B = 1): the tokens
     * continue the cached sequence, their keys and values are appended, one block's buffers are
     * reused for every block, and the logits are those of the last token only (1, V).
     */
    private INDArray run(Activations a, int B, int T, int[] ids, float[] mask, KvCache cache) {
        int N = B * T, C = config.hidden(), F = config.intermediate(), H = config.heads(), KV = config.kvHeads(), D = config.headDim();
        int offset = cache == null ? 0 : cache.length, Tk = offset + T;
        INDArray x = a.x.view(N, C), sum = a.sum.view(N, C);
        Nd4j.pullRows(embedTokens, x, 1, ids);
        INDArray bias = null;
        if (offset == 0 && T > 1) {
            bias = a.bias.view(B, T, T);
            CausalAttention.bias(a.causal, mask, B, T, a.keyBias.view(B, T), bias);
        }
        INDArray q = a.q.view(N, H * D), k = a.k.view(N, KV * D), v = a.v.view(N, KV * D), ctxh = a.ctxh.view(B, H, T, D);
        for (int l = 0; l < config.layers(); l++) {
            Block c = a.blocks[cache == null ? l : 0];
            INDArray h1 = c.h1.view(N, C);
            rmsNorm.forward(x, inputNorm[l], h1, c.xhat1.view(N, C), c.rstd1.view(N, 1));
            linears[l][Q].forward(h1, q);
            linears[l][K].forward(h1, k);
            linears[l][V].forward(h1, v);
            a.rope.forward(q, B, T, offset, a.ropeScratch.view(N, H * D));
            a.rope.forward(k, B, T, offset, a.ropeScratch.view(N, KV * D));
            INDArray qh = c.qh.view(B, H, T, D).assign(heads(q, B, T, H)), kh, vh;
            if (cache == null) {
                kh = c.kh.view(B, KV, T, D).assign(heads(k, B, T, KV));
                vh = c.vh.view(B, KV, T, D).assign(heads(v, B, T, KV));
            } else {
                cache.keys(l, offset, Tk).assign(heads(k, B, T, KV));
                cache.values(l, offset, Tk).assign(heads(v, B, T, KV));
                kh = cache.keys(l, 0, Tk);
                vh = cache.values(l, 0, Tk);
            }
            CausalAttention.forward(qh, kh, vh, bias, c.att.view(B, H, T, Tk), ctxh);
            INDArray ctx = c.ctx.view(N, H * D);
            heads(ctx, B, T, H).assign(ctxh);
            linears[l][O].forward(ctx, sum);
            x.addi(sum);
            INDArray h2 = c.h2.view(N, C), gate = c.gate.view(N, F), up = c.up.view(N, F), act = c.act.view(N, F);
            rmsNorm.forward(x, postNorm[l], h2, c.xhat2.view(N, C), c.rstd2.view(N, 1));
            linears[l][GATE].forward(h2, gate);
            linears[l][UP].forward(h2, up);
            SwiGlu.forward(gate, up, act, a.sig.view(N, F));
            linears[l][DOWN].forward(act, sum);
            x.addi(sum);
        }
        INDArray hf = a.hf.view(N, C);
        rmsNorm.forward(x, finalNorm, hf, a.xhatF.view(N, C), a.rstdF.view(N, 1));
        if (cache != null) hf = hf.get(NDArrayIndex.interval(T - 1, T), NDArrayIndex.all());
        INDArray logits = a.logits.view(hf.size(0), config.vocabSize());
        Nd4j.gemm(hf, lmHead, logits, false, true, 1.0, 0.0);
        return logits;
    }

    /** (B*T, heads*D) seen as (B, heads, T, D), a view. */
    private static INDArray heads(INDArray x, int B, int T, int heads) {
        return x.reshape('c', B, T, heads, x.size(1) / heads).permute(0, 2, 1, 3);
    }

    /**
     * Back-propagates dL/dlogits (B*T, V) of the last {@link #forward} through every block, so
     * that adapters accumulate their gradients. The embeddings are frozen: nothing flows into them.
     * dLogits may be the logits buffer itself (see {@link NextTokenLoss}).
     */
    public void backward(INDArray dLogits) {
        int B = lastB, T = lastT, N = B * T;
        if (N == 0) throw new IllegalStateException("backward needs a training forward first (generation does not keep activations)");
        int C = config.hidden(), F = config.intermediate(), H = config.heads(), KV = config.kvHeads(), D = config.headDim();
        if (dLogits.size(0) != N || dLogits.size(1) != config.vocabSize()) {
            throw new IllegalArgumentException("dLogits " + Arrays.toString(dLogits.shape()) + " does not match the last forward ("
                    + N + ", " + config.vocabSize() + ")");
        }
        Activations a = acts;
        Gradients g = grads;
        INDArray dx = g.dx.view(N, C), dh = g.dh.view(N, C), dsum = g.dsum.view(N, C), scratch = g.scratchC.view(N, C), stat = g.stat.view(N, 1);
        INDArray dctx = g.dctx.view(N, H * D), dq = g.dq.view(N, H * D), dk = g.dk.view(N, KV * D), dv = g.dv.view(N, KV * D);
        INDArray dctxh = g.dctxh.view(B, H, T, D), dqh = g.dqh.view(B, H, T, D), dkh = g.dkh.view(B, KV, T, D), dvh = g.dvh.view(B, KV, T, D);
        INDArray dact = g.dact.view(N, F), dgate = g.dgate.view(N, F), dup = g.dup.view(N, F), sig = a.sig.view(N, F);
        Nd4j.gemm(dLogits, lmHead, dh, false, false, 1.0, 0.0);
        rmsNorm.backward(dh, finalNorm, a.xhatF.view(N, C), a.rstdF.view(N, 1), dx, scratch, stat);
        for (int l = config.layers() - 1; l >= 0; l--) {
            Block c = a.blocks[l];
            linears[l][DOWN].backward(dx, dact, false);
            SwiGlu.backward(dact, c.gate.view(N, F), c.up.view(N, F), dgate, dup, sig);
            linears[l][GATE].backward(dgate, dh, false);
            linears[l][UP].backward(dup, dh, true);
            rmsNorm.backward(dh, postNorm[l], c.xhat2.view(N, C), c.rstd2.view(N, 1), dsum, scratch, stat);
            dx.addi(dsum);
            linears[l][O].backward(dx, dctx, false);
            dctxh.assign(heads(dctx, B, T, H));
            CausalAttention.backward(dctxh, c.qh.view(B, H, T, D), c.kh.view(B, KV, T, D), c.vh.view(B, KV, T, D), c.att.view(B, H, T, T),
                    g.datt.view(B, H, T, T), g.dscore.view(B, H, T, T), g.rowSum.view(B, H, T), dqh, dkh, dvh);
            heads(dq, B, T, H).assign(dqh);
            heads(dk, B, T, KV).assign(dkh);
            heads(dv, B, T, KV).assign(dvh);
            a.rope.backward(dq, B, T, 0, a.ropeScratch.view(N, H * D));
            a.rope.backward(dk, B, T, 0, a.ropeScratch.view(N, KV * D));
            linears[l][Q].backward(dq, dh, false);
            linears[l][K].backward(dk, dh, true);
            linears[l][V].backward(dv, dh, true);
            if (l == 0) break; // what remains would flow into the frozen embeddings
            rmsNorm.backward(dh, inputNorm[l], c.xhat1.view(N, C), c.rstd1.view(N, 1), dsum, scratch, stat);
            dx.addi(dsum);
        }
    }

    /**
     * A cache for generating one sequence of up to maxLength tokens whose prompt is at most
     * maxPrompt tokens. Allocates the keys and values of every block once.
     */
    public KvCache newCache(int maxLength, int maxPrompt) {
        if (maxLength > config.maxPositions()) {
            throw new IllegalArgumentException("a sequence of " + maxLength + " tokens exceeds the model's " + config.maxPositions() + " positions");
        }
        if (maxPrompt < 1 || maxPrompt > maxLength) throw new IllegalArgumentException("maxPrompt must be in [1, " + maxLength + "], got " + maxPrompt);
        return new KvCache(maxLength, maxPrompt);
    }

    /**
     * Appends tokens to the cached sequence and returns the logits (1, V) that follow the last of
     * them (a view, valid until the next call). An empty cache takes the whole prompt at once;
     * after that, one token per call. A later {@link #backward} is refused: nothing was kept for it.
     */
    public INDArray forwardCached(KvCache cache, int... tokens) {
        if (cache.owner() != this) throw new IllegalArgumentException("the cache belongs to another decoder");
        if (tokens.length == 0) throw new IllegalArgumentException("no tokens to append");
        if (cache.length > 0 && tokens.length != 1) throw new IllegalArgumentException("after the prompt, tokens are appended one at a time; got " + tokens.length);
        if (cache.length == 0 && tokens.length > cache.maxPrompt) {
            throw new IllegalArgumentException("a prompt of " + tokens.length + " tokens exceeds the cache's " + cache.maxPrompt);
        }
        if (cache.length + tokens.length > cache.maxLength) {
            throw new IllegalArgumentException("the cache holds " + cache.maxLength + " tokens; " + cache.length + " + " + tokens.length + " do not fit");
        }
        checkIds(tokens);
        lastB = lastT = 0;
        INDArray logits = run(cache.acts, 1, tokens.length, tokens, null, cache);
        cache.length += tokens.length;
        return logits;
    }

    /**
     * Continues one prompt with up to maxNewTokens tokens (greedy or sampled, as the sampler
     * decides), through a KV cache, and stops after the first end-of-sequence token of the
     * config. Returns the new tokens, the end-of-sequence token included when reached. Adapters
     * should be in evaluation mode (no dropout).
     */
    public int[] generate(int[] prompt, int maxNewTokens, Sampler sampler) {
        if (prompt.length == 0) throw new IllegalArgumentException("an empty prompt has nothing to continue");
        if (maxNewTokens < 1) throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
        int maxLength = prompt.length + maxNewTokens;
        if (generationCache == null || generationCache.maxLength < maxLength || generationCache.maxPrompt < prompt.length) {
            generationCache = newCache(maxLength, prompt.length);
        }
        KvCache cache = generationCache;
        cache.clear();
        int[] out = new int[maxNewTokens];
        int n = 0;
        INDArray logits = forwardCached(cache, prompt);
        while (true) {
            int token = sampler.next(logits.toDoubleVector());
            out[n++] = token;
            if (n == maxNewTokens || config.eosTokenIds().contains(token)) return Arrays.copyOf(out, n);
            logits = forwardCached(cache, token);
        }
    }

    /**
     * The keys and values of every block for one sequence being generated, with the buffers of
     * one block to compute them. Positions [0, length) are filled.
     */
    public final class KvCache {
        private final int maxLength, maxPrompt;
        private final Slab[] keys, values; // [L] (1, KV, maxLength, D), RoPE applied to the keys
        private final Activations acts;    // one block, chunks of up to maxPrompt tokens
        private int length;

        private KvCache(int maxLength, int maxPrompt) {
            this.maxLength = maxLength;
            this.maxPrompt = maxPrompt;
            int L = config.layers();
            long size = (long) config.kvHeads() * maxLength * config.headDim();
            keys = new Slab[L];
            values = new Slab[L];
            for (int l = 0; l < L; l++) {
                keys[l] = new Slab("cache.keys" + l, dtype, size);
                values[l] = new Slab("cache.values" + l, dtype, size);
            }
            acts = new Activations(1, maxPrompt, maxLength, 1, 1);
        }

        public int length() { return length; }

        /** Forgets the sequence; the buffers stay. */
        public void clear() { length = 0; }

        private LlamaDecoder owner() { return LlamaDecoder.this; }

        /** (1, KV, to - from, D) view of positions [from, to). */
        private INDArray keys(int l, int from, int to) {
            return positions(keys[l], from, to);
        }

        private INDArray values(int l, int from, int to) {
            return positions(values[l], from, to);
        }

        private INDArray positions(Slab s, int from, int to) {
            return s.view(1, config.kvHeads(), maxLength, config.headDim())
                    .get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(from, to), NDArrayIndex.all());
        }
    }

    /** One block's saved activations. N = B*T rows; HD = H*D, KVD = KV*D. */
    private static final class Block {
        final Slab h1, xhat1, h2, xhat2; // (N, C): normed inputs of attention and MLP, and x * rstd
        final Slab rstd1, rstd2;         // (N, 1)
        final Slab qh;                   // (B, H, T, D) RoPE applied
        final Slab kh, vh;               // (B, KV, T, D) RoPE applied to kh
        final Slab att;                  // (B, H, T, Tk)
        final Slab ctx;                  // (N, HD)
        final Slab gate, up, act;        // (N, F)

        Block(int l, DataType dt, long n, long c, long f, long hd, long kvd, long heads, long b, long t, long tk) {
            String p = "layer" + l + ".";
            h1 = new Slab(p + "h1", dt, n * c);
            xhat1 = new Slab(p + "xhat1", dt, n * c);
            h2 = new Slab(p + "h2", dt, n * c);
            xhat2 = new Slab(p + "xhat2", dt, n * c);
            rstd1 = new Slab(p + "rstd1", dt, n);
            rstd2 = new Slab(p + "rstd2", dt, n);
            qh = new Slab(p + "qh", dt, n * hd);
            kh = new Slab(p + "kh", dt, n * kvd);
            vh = new Slab(p + "vh", dt, n * kvd);
            att = new Slab(p + "att", dt, b * heads * t * tk);
            ctx = new Slab(p + "ctx", dt, n * hd);
            gate = new Slab(p + "gate", dt, n * f);
            up = new Slab(p + "up", dt, n * f);
            act = new Slab(p + "act", dt, n * f);
        }
    }

    /**
     * The forward buffers for up to maxB sequences of maxT tokens attending to up to maxKeys
     * positions, with blockCount blocks' activations and logits for logitRows rows.
     */
    private final class Activations {
        final int maxB, maxT;
        final Block[] blocks;
        final Slab x, sum, hf, xhatF;   // (N, C): residual stream, projection output, final norm and its x * rstd
        final Slab rstdF;               // (N, 1)
        final Slab q, ropeScratch;      // (N, HD)
        final Slab k, v;                // (N, KVD)
        final Slab ctxh;                // (B, H, T, D)
        final Slab sig;                 // (N, F) SwiGLU scratch
        final Slab keyBias;             // (B, T)
        final Slab bias;                // (B, T, T)
        final Slab logits;              // (logitRows, V)
        final INDArray causal;          // (maxT, maxT)
        final Rope rope;                // positions [0, maxKeys)

        Activations(int maxB, int maxT, int maxKeys, int blockCount, int logitRows) {
            this.maxB = maxB;
            this.maxT = maxT;
            long n = (long) maxB * maxT, c = config.hidden(), f = config.intermediate(), h = config.heads();
            long hd = h * config.headDim(), kvd = (long) config.kvHeads() * config.headDim();
            DataType dt = dtype;
            blocks = new Block[blockCount];
            for (int l = 0; l < blockCount; l++) blocks[l] = new Block(l, dt, n, c, f, hd, kvd, h, maxB, maxT, maxKeys);
            x = new Slab("x", dt, n * c);
            sum = new Slab("sum", dt, n * c);
            hf = new Slab("hf", dt, n * c);
            xhatF = new Slab("xhatF", dt, n * c);
            rstdF = new Slab("rstdF", dt, n);
            q = new Slab("q", dt, n * hd);
            ropeScratch = new Slab("ropeScratch", dt, n * hd);
            k = new Slab("k", dt, n * kvd);
            v = new Slab("v", dt, n * kvd);
            ctxh = new Slab("ctxh", dt, n * hd);
            sig = new Slab("sig", dt, n * f);
            keyBias = new Slab("keyBias", dt, n);
            bias = new Slab("bias", dt, n * maxT);
            logits = new Slab("logits", dt, (long) logitRows * config.vocabSize());
            causal = CausalAttention.causalTable(maxT, dt);
            rope = new Rope(config.headDim(), config.ropeTheta(), maxKeys, dt);
        }
    }

    /** Backward scratch for up to maxB sequences of maxT tokens, shared by all blocks. */
    private final class Gradients {
        final Slab dx, dh, dsum, scratchC;  // (N, C)
        final Slab stat;                    // (N, 1)
        final Slab dctx, dq, dctxh, dqh;    // (N, HD)
        final Slab dk, dv, dkh, dvh;        // (N, KVD)
        final Slab datt, dscore;            // (B, H, T, T)
        final Slab rowSum;                  // (B, H, T)
        final Slab dact, dgate, dup;        // (N, F)

        Gradients(int maxB, int maxT) {
            long n = (long) maxB * maxT, c = config.hidden(), f = config.intermediate(), h = config.heads();
            long hd = h * config.headDim(), kvd = (long) config.kvHeads() * config.headDim();
            DataType dt = dtype;
            dx = new Slab("dx", dt, n * c);
            dh = new Slab("dh", dt, n * c);
            dsum = new Slab("dsum", dt, n * c);
            scratchC = new Slab("scratchC", dt, n * c);
            stat = new Slab("stat", dt, n);
            dctx = new Slab("dctx", dt, n * hd);
            dq = new Slab("dq", dt, n * hd);
            dctxh = new Slab("dctxh", dt, n * hd);
            dqh = new Slab("dqh", dt, n * hd);
            dk = new Slab("dk", dt, n * kvd);
            dv = new Slab("dv", dt, n * kvd);
            dkh = new Slab("dkh", dt, n * kvd);
            dvh = new Slab("dvh", dt, n * kvd);
            datt = new Slab("datt", dt, n * h * maxT);
            dscore = new Slab("dscore", dt, n * h * maxT);
            rowSum = new Slab("rowSum", dt, n * h);
            dact = new Slab("dact", dt, n * f);
            dgate = new Slab("dgate", dt, n * f);
            dup = new Slab("dup", dt, n * f);
        }
    }
}
