package dev.moelora.cluster.bench;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.llama.LlamaConfig;
import dev.moelora.model.nn.FrozenLinear;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.tiedlora.TiedLoraConfig;
import java.util.List;

/**
 * The floating-point work of one training step, counted as the matrix products its math needs:
 * an (m x k)(k x n) product is 2·m·k·n FLOPs. Counted: the frozen trunk's products in forward
 * and the input-gradient products of backward (the frozen weights get no weight gradient), and
 * the adapter's own products in both directions. Not counted: elementwise work, softmax, norms,
 * and reductions that the code happens to write as a product with a vector (RMSNorm's row means,
 * Tied-LoRA's du and dv column sums, MoELoRA's per-expert mean outputs), all O(N·C) where the
 * products are O(N·C·C). Attention's products are counted over the full T x T scores, causal or
 * not, because that is what the code computes. It measures nothing; it is arithmetic on shapes.
 *
 * <p>Dimensions: B batch, T tokens per sequence, N = B·T rows, C hidden, F feed-forward width,
 * H heads, KV key/value heads, D = C / H head size, V vocabulary, L layers.
 * <pre>
 * decoder block, forward:  2NC(HD) + 2·2NC(KV·D) + 2N(HD)C   q, k, v, o
 *                          + 3·2NCF                          gate, up, down
 *                          + 2·2·B·H·T·T·D                   q k^T, att v
 * decoder block, backward: the same projections (dx only) + 4·2·B·H·T·T·D (dv, datt, dq, dk)
 * decoder head:            2NCV forward (logits), 2NVC backward (dL/dh)
 * encoder block, forward:  4·2NC² + 2·2NCF + 2·2NTC;  backward: 4·2NC² + 2·2NCF + 4·2NTC
 *                          (no head: the encoder bench back-propagates a fixed gradient on the last hidden state)
 * </pre>
 * Per adapted module (d_in, d_out) on N rows:
 * <pre>
 * LoRA / Tied-LoRA, rank r:  forward 2Nr(d_in + d_out)                        x A^T, h B^T
 *                            backward 2Nr·d_out [dB, if B trains] + 2Nr·d_out [dh = dy B]
 *                                     + 2Nr·d_in [dA, if A trains] + 2Nr·d_in [dx += dh A]
 * MoELoRA, E experts, top-k, rank r_e, at most M features per expert, NK = N·k routed rows,
 *          S = min(E·M, NK) sampled features (exact when every expert has M real rows):
 *     forward  2N·d_in·E [gate] + 2·NK·r_e·(d_in + d_out) [experts] + 2S²·d_out [Z Z^T]
 *     backward 2·2N·E·d_in [dW_g, dx] + 4·NK·r_e·(d_in + d_out) [dB, dh1, dA, dx] + 2S²·d_out [(C + C^T) Z]
 * </pre>
 */
public final class StepFlops {
    /** FLOPs of a step's forward (with the loss) and backward. */
    public record Flops(double forward, double backward) {
        public double total() { return forward + backward; }
        public Flops plus(Flops o) { return new Flops(forward + o.forward, backward + o.backward); }
    }

    /** An adapted module's shape. */
    public record Module(long dIn, long dOut) {}

    /** The products an adapter family adds per module; built from the run's {@code adapter.*} keys by {@link #of}. */
    public sealed interface Adapter {
        Flops module(long rows, Module m);

        static Adapter of(RunConfig config) {
            String type = config.string("adapter.type");
            return switch (type) {
                case "lora" -> new LowRank(config.integer("adapter.rank"), true, true);
                case "tied-lora" -> {
                    TiedLoraConfig.Components c = TiedLoraConfig.PRESETS.get(config.string("adapter.preset"));
                    if (c == null) throw new IllegalArgumentException("adapter.preset '" + config.string("adapter.preset") + "' is not a Tied-LoRA preset");
                    yield new LowRank(config.integer("adapter.rank"), c.trainA(), c.trainB());
                }
                case "moelora" -> new Mixture(config.integer("adapter.experts"), config.integer("adapter.top-k"),
                        config.integer("adapter.expert-rank"), config.integer("adapter.max-features-per-expert"));
                default -> throw new IllegalArgumentException("no FLOP count for adapter.type '" + type + "'");
            };
        }
    }

    /** LoRA, or Tied-LoRA (u and v are elementwise): y += s·B A x, with or without the gradients of A and B. */
    public record LowRank(int rank, boolean trainA, boolean trainB) implements Adapter {
        @Override
        public Flops module(long n, Module m) {
            double r = rank;
            double forward = 2 * n * r * (m.dIn() + m.dOut());
            double backward = 2 * n * r * m.dOut() * (trainB ? 2 : 1) + 2 * n * r * m.dIn() * (trainA ? 2 : 1);
            return new Flops(forward, backward);
        }
    }

    /** MoELoRA: the gate, the routed experts and the contrastive loss's two S x S products. */
    public record Mixture(int experts, int topK, int expertRank, int maxFeaturesPerExpert) implements Adapter {
        @Override
        public Flops module(long n, Module m) {
            double nk = (double) n * topK, s = Math.min((double) experts * maxFeaturesPerExpert, nk);
            double lowRank = nk * expertRank * (m.dIn() + m.dOut());
            double forward = 2.0 * n * m.dIn() * experts + 2 * lowRank + 2 * s * s * m.dOut();
            double backward = 4.0 * n * experts * m.dIn() + 4 * lowRank + 2 * s * s * m.dOut();
            return new Flops(forward, backward);
        }
    }

    private StepFlops() {}

    /** The decoder's trunk and head on B sequences of T tokens. */
    public static Flops decoder(LlamaConfig c, int batch, int seq) {
        double n = (double) batch * seq, C = c.hidden(), F = c.intermediate(), HD = (double) c.heads() * c.headDim(),
                KVD = (double) c.kvHeads() * c.headDim(), V = c.vocabSize();
        double projections = 2 * n * C * HD + 2 * 2 * n * C * KVD + 2 * n * HD * C + 3 * 2 * n * C * F;
        double scores = 2 * n * seq * HD; // one B·H·T·T·D product
        double head = 2 * n * C * V;
        int L = c.layers();
        return new Flops(L * (projections + 2 * scores) + head, L * (projections + 4 * scores) + head);
    }

    /** A BERT-family encoder on B sequences of T tokens, backward from a gradient on its last hidden state. */
    public static Flops encoder(BertConfig c, int batch, int seq) {
        double n = (double) batch * seq, C = c.hidden(), F = c.intermediate();
        double projections = 4 * 2 * n * C * C + 2 * 2 * n * C * F;
        double scores = 2 * n * seq * C;
        int L = c.layers();
        return new Flops(L * (projections + 2 * scores), L * (projections + 4 * scores));
    }

    /** The shapes of the modules an adapter decorates: every linear layer of the model that is no longer the frozen base one. */
    public static List<Module> adapted(List<Linear> linears) {
        return linears.stream().filter(l -> !(l instanceof FrozenLinear)).map(l -> new Module(l.dIn(), l.dOut())).toList();
    }

    /** The adapter's products over every adapted module, N rows each. */
    public static Flops adapter(Adapter family, List<Module> modules, long rows) {
        Flops sum = new Flops(0, 0);
        for (Module m : modules) sum = sum.plus(family.module(rows, m));
        return sum;
    }
}
