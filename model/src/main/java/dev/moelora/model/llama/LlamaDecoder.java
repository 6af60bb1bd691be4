package dev.moelora.model.llama;

import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.nn.Attention;
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
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * A LLaMA-family decoder ({@code LlamaForCausalLM}, {@code Qwen2ForCausalLM}): token embeddings, then L pre-norm blocks
 * (RMSNorm, grouped-query causal attention with RoPE, residual; RMSNorm, SwiGLU MLP, residual),
 * a final RMSNorm and the LM head (tied to the embeddings or not). Forward gives next-token
 * logits; backward takes dL/dlogits down through every block so that adapters decorating the
 * projections accumulate their gradients. The base weights and embeddings are frozen: nothing
 * here ever writes a weight, and no gradient is computed for one (nor for a projection's bias,
 * which is part of the frozen base: an adapter adds its term to {@code x W^T + b}).
 *
 * <p>Training activations live in buffers sized once by {@link #reserve} and reused by every
 * step. Generation runs the same blocks against a {@link KvCache}, which holds its own
 * preallocated keys, values and one block's worth of buffers for a batch of sequences, each at
 * its own length. Weight and module names are
 * Hugging Face's ({@code model.layers.0.self_attn.q_proj}), so PEFT target names match.
 */
public final class LlamaDecoder implements AdaptableModel {
    /** Positions of a block's projections in {@link #linears}. */
    private static final int Q = 0, K = 1, V = 2, O = 3, GATE = 4, UP = 5, DOWN = 6;
    private static final String[] MODULES = LlamaConfig.PROJECTIONS.toArray(String[]::new);

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
    private int[] lastRows;         // the rows whose logits the last training forward computed; null: all
    private int[] fromRow = new int[0];  // (N) backward: the logit row each row of dh takes, or R for none
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
            for (int m = 0; m < MODULES.length; m++) {
                String name = p + MODULES[m];
                INDArray bias = w.get(name + ".bias");
                linears[l][m] = bias == null ? new FrozenLinear(name, w.get(name + ".weight")) : new FrozenLinear(name, w.get(name + ".weight"), bias);
            }
        }
        this.rmsNorm = new RmsNorm(C, config.rmsNormEps());
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
     * norm weights near 1, biases N(0, 0.25).
     */
    public static Map<String, INDArray> randomWeights(LlamaConfig config, DataType dtype, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, INDArray> w = new LinkedHashMap<>();
        config.weightShapes().forEach((name, shape) -> w.put(name, name.endsWith(".bias") ? Init.normal(random, dtype, 0.5, shape)
                : shape.length == 1 ? Init.normal(random, dtype, 0.1, shape).addi(1.0)
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
        lastRows = null;
        return run(acts, batch.batch(), batch.tokens(), batch.ids(), batch.mask(), null, null, null);
    }

    /**
     * A training forward that computes the logits (R, V) of the listed rows only (ascending,
     * in [0, B*T)): logits row j is what {@link #forward(DecoderBatch)} gives in row rows[j]. The
     * blocks run on every row; the LM head, the largest GEMM of a small model, and its gradient
     * in {@link #backward} only on the rows a loss reads (the response tokens of instruction
     * tuning, see {@link NextTokenLoss#countedRows}). A view, valid until the next forward; with
     * no rows, an empty (0, V) array.
     */
    public INDArray forward(DecoderBatch batch, int[] rows) {
        checkIds(batch.ids());
        int n = batch.rows();
        for (int j = 0; j < rows.length; j++) {
            if (rows[j] < 0 || rows[j] >= n || (j > 0 && rows[j] <= rows[j - 1])) {
                throw new IllegalArgumentException("logit rows must ascend within [0, " + n + "): row " + j + " is " + rows[j]);
            }
        }
        reserve(batch.batch(), batch.tokens());
        lastB = batch.batch();
        lastT = batch.tokens();
        lastRows = rows.clone();
        return run(acts, batch.batch(), batch.tokens(), batch.ids(), batch.mask(), null, null, lastRows);
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
     * 0..T-1, every block's activations kept, logits for every row. With one, the keys and values
     * go into the cache and one block's buffers serve every block: without {@code positions} the
     * tokens are the prompts filling an empty cache (positions 0..T-1, right-padded as {@code mask}
     * says) and the logits are those after each prompt's last token (B, V); with them, each row
     * appends one token (T = 1) at its own position {@code positions[b]}, attends to the keys
     * [0, positions[b]] of its row, and the logits are (B, V).
     */
    private INDArray run(Activations a, int B, int T, int[] ids, float[] mask, KvCache cache, int[] positions, int[] logitRows) {
        int N = B * T, C = config.hidden(), F = config.intermediate(), H = config.heads(), KV = config.kvHeads(), D = config.headDim();
        int Tk = positions == null ? T : Arrays.stream(positions).max().orElseThrow() + 1;
        INDArray x = a.x.view(N, C), sum = a.sum.view(N, C);
        Nd4j.pullRows(embedTokens, x, 1, ids);
        INDArray bias = null;
        if (positions == null && T > 1) {
            bias = a.bias.view(B, T, T);
            CausalAttention.bias(a.causal, mask, B, T, a.keyBias.view(B, T), bias);
        } else if (positions != null) {
            bias = cache.stepBias(positions, Tk);
            a.rope.gather(positions, cache.cosRows.view(B, D), cache.sinRows.view(B, D));
        }
        INDArray q = a.q.view(N, H * D), k = a.k.view(N, KV * D), v = a.v.view(N, KV * D), ctxh = a.ctxh.view(B, H, T, D);
        for (int l = 0; l < config.layers(); l++) {
            Block c = a.blocks[cache == null ? l : 0];
            INDArray h1 = c.h1.view(N, C);
            rmsNorm.forward(x, inputNorm[l], h1, c.xhat1.view(N, C), c.rstd1.view(N, 1));
            linears[l][Q].forward(h1, q);
            linears[l][K].forward(h1, k);
            linears[l][V].forward(h1, v);
            if (positions == null) {
                a.rope.forward(q, B, T, 0);
                a.rope.forward(k, B, T, 0);
            } else {
                a.rope.forwardAt(q, cache.cosRows.view(B, D), cache.sinRows.view(B, D));
                a.rope.forwardAt(k, cache.cosRows.view(B, D), cache.sinRows.view(B, D));
            }
            INDArray qh = c.qh.view(B, H, T, D).assign(heads(q, B, T, H)), kh, vh;
            if (cache == null) {
                kh = c.kh.view(B, KV, T, D).assign(heads(k, B, T, KV));
                vh = c.vh.view(B, KV, T, D).assign(heads(v, B, T, KV));
            } else {
                cache.append(l, heads(k, B, T, KV), heads(v, B, T, KV), positions);
                kh = cache.keys(l, B, Tk);
                vh = cache.values(l, B, Tk);
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
            SwiGlu.forward(gate, up, act);
            linears[l][DOWN].forward(act, sum);
            x.addi(sum);
        }
        INDArray hf = a.hf.view(N, C);
        rmsNorm.forward(x, finalNorm, hf, a.xhatF.view(N, C), a.rstdF.view(N, 1));
        if (cache != null && positions == null) {
            int[] last = new int[B];
            for (int b = 0; b < B; b++) last[b] = b * T + cache.lengths[b] - 1;
            INDArray rows = cache.lastHidden.view(B, C);
            Nd4j.pullRows(hf, rows, 1, last);
            hf = rows;
        } else if (logitRows != null) {
            if (logitRows.length == 0) return Nd4j.create(dtype, 0, config.vocabSize());
            INDArray rows = a.sum.view(logitRows.length, C);                 // the blocks are done with sum
            Nd4j.pullRows(hf, rows, 1, logitRows);
            hf = rows;
        }
        INDArray logits = a.logits.view(hf.size(0), config.vocabSize());
        Nd4j.gemm(hf, lmHead, logits, false, true, 1.0, 0.0);
        return logits;
    }

    /** (B*T, heads*D) seen as (B, heads, T, D), a view. */
    private static INDArray heads(INDArray x, int B, int T, int heads) {
        return x.reshape('c', B, T, heads, x.size(1) / heads).permute(0, 2, 1, 3);
    }

    /**
     * Back-propagates dL/dlogits of the last {@link #forward} through every block, so that adapters
     * accumulate their gradients: (B*T, V), or (R, V) for the rows a {@link #forward(DecoderBatch, int[])}
     * computed (every other row's dL/dlogits is 0). The embeddings are frozen: nothing flows into
     * them. dLogits may be the logits buffer itself (see {@link NextTokenLoss}).
     */
    public void backward(INDArray dLogits) {
        int B = lastB, T = lastT, N = B * T;
        if (N == 0) throw new IllegalStateException("backward needs a training forward first (generation does not keep activations)");
        int C = config.hidden(), F = config.intermediate(), H = config.heads(), KV = config.kvHeads(), D = config.headDim();
        int rows = lastRows == null ? N : lastRows.length;
        if (dLogits.size(0) != rows || dLogits.size(1) != config.vocabSize()) {
            throw new IllegalArgumentException("dLogits " + Arrays.toString(dLogits.shape()) + " does not match the last forward ("
                    + rows + ", " + config.vocabSize() + ")");
        }
        Activations a = acts;
        Gradients g = grads;
        INDArray dx = g.dx.view(N, C), dh = g.dh.view(N, C), dsum = g.dsum.view(N, C);
        INDArray dctx = g.dctx.view(N, H * D), dq = g.dq.view(N, H * D), dk = g.dk.view(N, KV * D), dv = g.dv.view(N, KV * D);
        INDArray dctxh = g.dctxh.view(B, H, T, D), dqh = g.dqh.view(B, H, T, D), dkh = g.dkh.view(B, KV, T, D), dvh = g.dvh.view(B, KV, T, D);
        INDArray dact = g.dact.view(N, F), dgate = g.dgate.view(N, F), dup = g.dup.view(N, F);
        if (lastRows == null) {
            Nd4j.gemm(dLogits, lmHead, dh, false, false, 1.0, 0.0);
        } else {
            scatterHeadGradient(dLogits, dh, g.dsum);
        }
        rmsNorm.backward(dh, finalNorm, a.xhatF.view(N, C), a.rstdF.view(N, 1), dx);
        for (int l = config.layers() - 1; l >= 0; l--) {
            Block c = a.blocks[l];
            linears[l][DOWN].backward(dx, dact, false);
            SwiGlu.backward(dact, c.gate.view(N, F), c.up.view(N, F), dgate, dup);
            linears[l][GATE].backward(dgate, dh, false);
            linears[l][UP].backward(dup, dh, true);
            rmsNorm.backward(dh, postNorm[l], c.xhat2.view(N, C), c.rstd2.view(N, 1), dsum);
            dx.addi(dsum);
            linears[l][O].backward(dx, dctx, false);
            dctxh.assign(heads(dctx, B, T, H));
            CausalAttention.backward(dctxh, c.qh.view(B, H, T, D), c.kh.view(B, KV, T, D), c.vh.view(B, KV, T, D), c.att.view(B, H, T, T),
                    g.datt.view(B, H, T, T), dqh, dkh, dvh);
            heads(dq, B, T, H).assign(dqh);
            heads(dk, B, T, KV).assign(dkh);
            heads(dv, B, T, KV).assign(dvh);
            a.rope.backward(dq, B, T, 0);
            a.rope.backward(dk, B, T, 0);
            linears[l][Q].backward(dq, dh, false);
            linears[l][K].backward(dk, dh, true);
            linears[l][V].backward(dv, dh, true);
            if (l == 0) break; // what remains would flow into the frozen embeddings
            rmsNorm.backward(dh, inputNorm[l], c.xhat1.view(N, C), c.rstd1.view(N, 1), dsum);
            dx.addi(dsum);
        }
    }

    /**
     * dh (N, C) = dL/dlogits (R, V) times the LM head, on the R rows of the last forward and 0 on
     * the others: one GEMM into the first R rows of {@code scratch}, whose row R is zeroed, then
     * one gather that takes every row of dh from its logit row or from the zero row.
     */
    private void scatterHeadGradient(INDArray dLogits, INDArray dh, Slab scratch) {
        int R = lastRows.length, N = (int) dh.size(0), C = (int) dh.size(1);
        INDArray dr = scratch.view(R + 1, C);
        if (R > 0) Nd4j.gemm(dLogits, lmHead, dr.get(NDArrayIndex.interval(0, R), NDArrayIndex.all()), false, false, 1.0, 0.0);
        dr.getRow(R).assign(0.0);
        if (fromRow.length != N) fromRow = new int[N];
        Arrays.fill(fromRow, R);
        for (int j = 0; j < R; j++) fromRow[lastRows[j]] = j;
        Nd4j.pullRows(dr, dh, 1, fromRow);
    }

    /**
     * A cache for generating up to maxBatch sequences together, each of up to maxLength tokens
     * with a prompt of at most maxPrompt tokens. Allocates the keys and values of every block once.
     */
    public KvCache newCache(int maxBatch, int maxLength, int maxPrompt) {
        if (maxBatch < 1) throw new IllegalArgumentException("maxBatch must be >= 1, got " + maxBatch);
        if (maxLength > config.maxPositions()) {
            throw new IllegalArgumentException("a sequence of " + maxLength + " tokens exceeds the model's " + config.maxPositions() + " positions");
        }
        if (maxPrompt < 1 || maxPrompt > maxLength) throw new IllegalArgumentException("maxPrompt must be in [1, " + maxLength + "], got " + maxPrompt);
        return new KvCache(maxBatch, maxLength, maxPrompt);
    }

    /**
     * Fills an empty cache with prompts, row b with {@code prompts.get(b)} (right-padded into one
     * batch, each at positions 0..length-1), and returns the logits (B, V) that follow each prompt's
     * last token: a view, valid until the next call. A later {@link #backward} is refused: nothing
     * was kept for it.
     */
    public INDArray prefill(KvCache cache, List<int[]> prompts) {
        if (cache.owner() != this) throw new IllegalArgumentException("the cache belongs to another decoder");
        if (cache.rows != 0) throw new IllegalArgumentException("prefill needs an empty cache; it holds " + cache.rows + " rows (clear() it)");
        int B = prompts.size();
        if (B < 1 || B > cache.maxBatch) throw new IllegalArgumentException(B + " prompts for a cache of " + cache.maxBatch + " rows");
        int T = 0;
        for (int[] p : prompts) {
            if (p.length == 0) throw new IllegalArgumentException("an empty prompt has nothing to continue");
            if (p.length > cache.maxPrompt) throw new IllegalArgumentException("a prompt of " + p.length + " tokens exceeds the cache's " + cache.maxPrompt);
            checkIds(p);
            T = Math.max(T, p.length);
        }
        int[] ids = new int[B * T];
        float[] mask = new float[B * T];
        boolean padded = false;
        for (int b = 0; b < B; b++) {
            int[] p = prompts.get(b);
            System.arraycopy(p, 0, ids, b * T, p.length);
            Arrays.fill(mask, b * T, b * T + p.length, 1f);
            padded |= p.length < T;
            cache.lengths[b] = p.length;
        }
        cache.rows = B;
        lastB = lastT = 0;
        return run(cache.acts, B, T, ids, padded ? mask : null, cache, null, null);
    }

    /**
     * Appends {@code tokens[b]} to row b of the cache, each at its row's own position, and returns
     * the logits (B, V) that follow them: a view, valid until the next call.
     */
    public INDArray step(KvCache cache, int[] tokens) {
        if (cache.owner() != this) throw new IllegalArgumentException("the cache belongs to another decoder");
        if (tokens.length != cache.rows || tokens.length == 0) {
            throw new IllegalArgumentException(tokens.length + " tokens for a cache of " + cache.rows + " rows in use: one token per row");
        }
        int[] positions = Arrays.copyOf(cache.lengths, cache.rows);
        for (int b = 0; b < positions.length; b++) {
            if (positions[b] >= cache.maxLength) {
                throw new IllegalArgumentException("row " + b + " of the cache holds " + cache.maxLength + " tokens; one more does not fit");
            }
        }
        checkIds(tokens);
        lastB = lastT = 0;
        INDArray logits = run(cache.acts, tokens.length, 1, tokens, null, cache, positions, null);
        for (int b = 0; b < positions.length; b++) cache.lengths[b]++;
        return logits;
    }

    /**
     * Continues one prompt with up to maxNewTokens tokens (greedy or sampled, as the sampler
     * decides), through a KV cache, and stops after the first end-of-sequence token of the
     * config. Returns the new tokens, the end-of-sequence token included when reached. Adapters
     * should be in evaluation mode (no dropout).
     */
    public int[] generate(int[] prompt, int maxNewTokens, Sampler sampler) {
        return generate(List.of(prompt), new int[] {maxNewTokens}, List.of(sampler)).get(0);
    }

    /**
     * Continues several prompts at once, each as {@link #generate(int[], int, Sampler)} would
     * alone: prompt b gets up to {@code maxNewTokens[b]} tokens drawn by {@code samplers.get(b)}
     * (each row its own stream, so a row's tokens do not depend on the others) and stops after its
     * first end-of-sequence token. One prefill of the right-padded prompts, then one step per new
     * token for every row still going; a finished row leaves the batch (the last row takes its
     * place in the cache), so it costs nothing after it stops.
     */
    public List<int[]> generate(List<int[]> prompts, int[] maxNewTokens, List<Sampler> samplers) {
        int B = prompts.size();
        if (B == 0) throw new IllegalArgumentException("no prompts to continue");
        if (maxNewTokens.length != B || samplers.size() != B) {
            throw new IllegalArgumentException(B + " prompts need as many token limits and samplers; got " + maxNewTokens.length + " and " + samplers.size());
        }
        int maxPrompt = 0, maxLength = 0;
        for (int b = 0; b < B; b++) {
            if (prompts.get(b).length == 0) throw new IllegalArgumentException("prompt " + b + " is empty: nothing to continue");
            if (maxNewTokens[b] < 1) throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens[b] + " for prompt " + b);
            maxPrompt = Math.max(maxPrompt, prompts.get(b).length);
            maxLength = Math.max(maxLength, prompts.get(b).length + maxNewTokens[b]);
        }
        if (generationCache == null || generationCache.maxBatch < B || generationCache.maxLength < maxLength || generationCache.maxPrompt < maxPrompt) {
            generationCache = newCache(B, maxLength, maxPrompt);
        }
        KvCache cache = generationCache;
        cache.clear();
        int[][] out = new int[B][];
        for (int b = 0; b < B; b++) out[b] = new int[maxNewTokens[b]];
        int[] made = new int[B], sequenceOfRow = new int[B], next = new int[B];
        for (int b = 0; b < B; b++) sequenceOfRow[b] = b;
        INDArray logits = prefill(cache, prompts);
        while (true) {
            for (int row = 0; row < cache.rows; row++) {
                int s = sequenceOfRow[row];
                next[row] = out[s][made[s]++] = samplers.get(s).next(logits.getRow(row).toDoubleVector());
            }
            // from the last row down, so the row that moves into a finished one was already looked at
            for (int row = cache.rows - 1; row >= 0; row--) {
                int s = sequenceOfRow[row];
                if (made[s] == maxNewTokens[s] || config.eosTokenIds().contains(next[row])) {
                    int moved = cache.remove(row);
                    sequenceOfRow[row] = sequenceOfRow[moved];
                    next[row] = next[moved];
                }
            }
            if (cache.rows == 0) break;
            logits = step(cache, Arrays.copyOf(next, cache.rows));
        }
        List<int[]> result = new java.util.ArrayList<>(B);
        for (int b = 0; b < B; b++) result.add(Arrays.copyOf(out[b], made[b]));
        return result;
    }

    /**
     * The keys and values of every block for up to maxBatch sequences being generated together,
     * with the buffers of one block to compute them. Rows [0, rows()) are in use; row b holds
     * positions [0, length(b)).
     */
    public final class KvCache {
        private final int maxBatch, maxLength, maxPrompt;
        private final Slab[] keys, values;   // [L] (maxBatch, KV, maxLength, D), RoPE applied to the keys
        private final Activations acts;      // one block, up to maxBatch x maxPrompt tokens, logits for maxBatch rows
        private final Slab lastHidden;       // (maxBatch, C) each prompt's last final-norm row
        private final Slab bias;             // (maxBatch, 1, maxLength) a step's key mask
        private final Slab cosRows, sinRows; // (maxBatch, D) a step's RoPE table rows
        private final int[] lengths;         // (maxBatch) tokens held by each row
        private int rows;

        private KvCache(int maxBatch, int maxLength, int maxPrompt) {
            this.maxBatch = maxBatch;
            this.maxLength = maxLength;
            this.maxPrompt = maxPrompt;
            int L = config.layers();
            long size = (long) maxBatch * config.kvHeads() * maxLength * config.headDim();
            keys = new Slab[L];
            values = new Slab[L];
            for (int l = 0; l < L; l++) {
                keys[l] = new Slab("cache.keys" + l, dtype, size);
                values[l] = new Slab("cache.values" + l, dtype, size);
            }
            acts = new Activations(maxBatch, maxPrompt, maxLength, 1, maxBatch);
            lastHidden = new Slab("cache.lastHidden", dtype, (long) maxBatch * config.hidden());
            bias = new Slab("cache.bias", dtype, (long) maxBatch * maxLength);
            cosRows = new Slab("cache.cosRows", dtype, (long) maxBatch * config.headDim());
            sinRows = new Slab("cache.sinRows", dtype, (long) maxBatch * config.headDim());
            lengths = new int[maxBatch];
        }

        /** Rows in use. */
        public int rows() { return rows; }

        /** Tokens row b holds. */
        public int length(int b) {
            if (b < 0 || b >= rows) throw new IndexOutOfBoundsException("row " + b + " of " + rows + " in use");
            return lengths[b];
        }

        /** Forgets every sequence; the buffers stay. */
        public void clear() {
            rows = 0;
            Arrays.fill(lengths, 0);
        }

        /**
         * Takes row b out of the batch: the last row in use moves into its place (its keys, values
         * and length), so the rows in use stay [0, rows()). Returns the index the moved row had
         * (b itself when b was the last).
         */
        public int remove(int b) {
            if (b < 0 || b >= rows) throw new IndexOutOfBoundsException("row " + b + " of " + rows + " in use");
            int last = rows - 1;
            if (b != last) {
                for (int l = 0; l < config.layers(); l++) {
                    row(keys[l], b, lengths[last]).assign(row(keys[l], last, lengths[last]));
                    row(values[l], b, lengths[last]).assign(row(values[l], last, lengths[last]));
                }
                lengths[b] = lengths[last];
            }
            lengths[last] = 0;
            rows = last;
            return last;
        }

        private LlamaDecoder owner() { return LlamaDecoder.this; }

        /**
         * Writes the keys and values (B, KV, T, D) of block l: without positions, the prompts at
         * [0, T) of rows [0, B); with them, row b's one token at positions[b].
         */
        private void append(int l, INDArray k, INDArray v, int[] positions) {
            long B = k.size(0), T = k.size(2);
            if (positions == null) {
                all(keys[l]).get(NDArrayIndex.interval(0, B), NDArrayIndex.all(), NDArrayIndex.interval(0, T), NDArrayIndex.all()).assign(k);
                all(values[l]).get(NDArrayIndex.interval(0, B), NDArrayIndex.all(), NDArrayIndex.interval(0, T), NDArrayIndex.all()).assign(v);
                return;
            }
            for (int b = 0; b < B; b++) {
                INDArrayIndex at = NDArrayIndex.interval(positions[b], positions[b] + 1);
                all(keys[l]).get(NDArrayIndex.point(b), NDArrayIndex.all(), at, NDArrayIndex.all())
                        .assign(k.get(NDArrayIndex.point(b), NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.all()));
                all(values[l]).get(NDArrayIndex.point(b), NDArrayIndex.all(), at, NDArrayIndex.all())
                        .assign(v.get(NDArrayIndex.point(b), NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.all()));
            }
        }

        /** (B, KV, Tk, D) view of positions [0, Tk) of rows [0, B). */
        private INDArray keys(int l, int B, int Tk) {
            return all(keys[l]).get(NDArrayIndex.interval(0, B), NDArrayIndex.all(), NDArrayIndex.interval(0, Tk), NDArrayIndex.all());
        }

        private INDArray values(int l, int B, int Tk) {
            return all(values[l]).get(NDArrayIndex.interval(0, B), NDArrayIndex.all(), NDArrayIndex.interval(0, Tk), NDArrayIndex.all());
        }

        /** (KV, n, D) view of positions [0, n) of row b. */
        private INDArray row(Slab s, int b, int n) {
            return all(s).get(NDArrayIndex.point(b), NDArrayIndex.all(), NDArrayIndex.interval(0, n), NDArrayIndex.all());
        }

        private INDArray all(Slab s) {
            return s.view(maxBatch, config.kvHeads(), maxLength, config.headDim());
        }

        /**
         * (B, 1, Tk): key j hidden from row b's query when j > positions[b], the keys the row has not
         * written (padding of a shorter prompt, or nothing yet); null when every row sees all Tk keys.
         */
        private INDArray stepBias(int[] positions, int Tk) {
            int B = positions.length;
            boolean same = Arrays.stream(positions).allMatch(p -> p == Tk - 1);
            if (same) return null;
            INDArray b3 = bias.view(B, 1, Tk);
            for (int b = 0; b < B; b++) {
                b3.get(NDArrayIndex.point(b), NDArrayIndex.point(0), NDArrayIndex.interval(0, positions[b] + 1)).assign(0.0);
                if (positions[b] + 1 < Tk) b3.get(NDArrayIndex.point(b), NDArrayIndex.point(0), NDArrayIndex.interval(positions[b] + 1, Tk)).assign(Attention.MASKED);
            }
            return b3;
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
        final Slab q;                   // (N, HD)
        final Slab k, v;                // (N, KVD)
        final Slab ctxh;                // (B, H, T, D)
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
            k = new Slab("k", dt, n * kvd);
            v = new Slab("v", dt, n * kvd);
            ctxh = new Slab("ctxh", dt, n * hd);
            keyBias = new Slab("keyBias", dt, n);
            bias = new Slab("bias", dt, n * maxT);
            logits = new Slab("logits", dt, (long) logitRows * config.vocabSize());
            causal = CausalAttention.causalTable(maxT, dt);
            rope = new Rope(config.headDim(), config.ropeTheta(), config.ropeScaling(), maxKeys, dt);
        }
    }

    /** Backward scratch for up to maxB sequences of maxT tokens, shared by all blocks. */
    private final class Gradients {
        final Slab dx, dh, dsum;            // (N, C)
        final Slab dctx, dq, dctxh, dqh;    // (N, HD)
        final Slab dk, dv, dkh, dvh;        // (N, KVD)
        final Slab datt;                    // (B, H, T, T)
        final Slab dact, dgate, dup;        // (N, F)

        Gradients(int maxB, int maxT) {
            long n = (long) maxB * maxT, c = config.hidden(), f = config.intermediate(), h = config.heads();
            long hd = h * config.headDim(), kvd = (long) config.kvHeads() * config.headDim();
            DataType dt = dtype;
            dx = new Slab("dx", dt, n * c);
            dh = new Slab("dh", dt, n * c);
            dsum = new Slab("dsum", dt, n * c);
            dctx = new Slab("dctx", dt, n * hd);
            dq = new Slab("dq", dt, n * hd);
            dctxh = new Slab("dctxh", dt, n * hd);
            dqh = new Slab("dqh", dt, n * hd);
            dk = new Slab("dk", dt, n * kvd);
            dv = new Slab("dv", dt, n * kvd);
            dkh = new Slab("dkh", dt, n * kvd);
            dvh = new Slab("dvh", dt, n * kvd);
            datt = new Slab("datt", dt, n * h * maxT);
            dact = new Slab("dact", dt, n * f);
            dgate = new Slab("dgate", dt, n * f);
            dup = new Slab("dup", dt, n * f);
        }
    }
}
