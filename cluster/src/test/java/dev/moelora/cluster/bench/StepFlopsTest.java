package dev.moelora.cluster.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.moelora.model.bert.BertConfig;
import dev.moelora.model.llama.LlamaConfig;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The bench's FLOP formulas against products counted by hand, one by one, on tiny shapes: a
 * decoder of C 4, F 6, H 2 over KV 1 (D 2), V 10, one layer, one sequence of 3 tokens (N 3).
 */
class StepFlopsTest {
    static final LlamaConfig TINY = new LlamaConfig(10, 4, 6, 1, 2, 1, 1e-5, 10000, false, 16, 1, List.of(2));
    static final StepFlops.Module Q = new StepFlops.Module(4, 4), V = new StepFlops.Module(4, 2);

    @Test
    void decoderTrunkCountsEveryProjectionAttentionProductAndTheHead() {
        double q = 2 * 3 * 4 * 4, k = 2 * 3 * 4 * 2, v = 2 * 3 * 4 * 2, o = 2 * 3 * 4 * 4;
        double mlp = 3 * (2 * 3 * 4 * 6);
        double scores = 2 * (1 * 2 * 3 * 3 * 2);     // B H T T D, two flops per multiply-add
        double head = 2 * 3 * 4 * 10;
        StepFlops.Flops f = StepFlops.decoder(TINY, 1, 3);
        assertEquals(q + k + v + o + mlp + 2 * scores + head, f.forward());   // q k^T, att v
        assertEquals(q + k + v + o + mlp + 4 * scores + head, f.backward());  // dv, datt, dq, dk; dx of every projection
    }

    @Test
    void encoderTrunkHasNoHead() {
        BertConfig tiny = new BertConfig(10, 4, 1, 2, 6, 16, 2, 1e-12);
        double projections = 4 * (2 * 3 * 4 * 4) + 2 * (2 * 3 * 4 * 6);
        double scores = 2 * (1 * 2 * 3 * 3 * 2);
        StepFlops.Flops f = StepFlops.encoder(tiny, 1, 3);
        assertEquals(projections + 2 * scores, f.forward());
        assertEquals(projections + 4 * scores, f.backward());
    }

    @Test
    void loraCountsAxBhForwardAndFourProductsBackward() {
        StepFlops.Flops f = StepFlops.adapter(new StepFlops.LowRank(2, true, true), List.of(Q, V), 3);
        double forwardQ = 2 * 3 * 4 * 2 + 2 * 3 * 2 * 4, forwardV = 2 * 3 * 4 * 2 + 2 * 3 * 2 * 2;
        assertEquals(forwardQ + forwardV, f.forward());
        assertEquals(2 * (forwardQ + forwardV), f.backward());               // dB, dh, dA, dx
    }

    @Test
    void tiedLoraWithFrozenASkipsOnlyDa() {
        StepFlops.Flops f = StepFlops.adapter(new StepFlops.LowRank(2, false, true), List.of(Q), 3);
        assertEquals(2 * 3 * 4 * 2 + 2 * 3 * 2 * 4, f.forward());
        assertEquals(2 * (2 * 3 * 2 * 4) + 2 * 3 * 2 * 4, f.backward());     // dB, dh; dx but no dA
    }

    @Test
    void moeLoraCountsGateRoutedExpertsAndContrastiveProducts() {
        // E 2, top-1, r_e 1, M 2 on q: NK = 3 routed rows, S = min(E M, NK) = 3 features
        StepFlops.Flops f = StepFlops.adapter(new StepFlops.Mixture(2, 1, 1, 2), List.of(Q), 3);
        double gate = 2 * 3 * 4 * 2, experts = 2 * 3 * 1 * (4 + 4), contrastive = 2 * 3 * 3 * 4;
        assertEquals(gate + experts + contrastive, f.forward());
        assertEquals(2 * gate + 2 * experts + contrastive, f.backward());     // dW_g, dx; dB, dh1, dA, dx; (C + C^T) Z
    }

    @Test
    void adaptedModulesAreTheDecoratedLinearsWithTheirShapes() {
        LlamaDecoder decoder = LlamaDecoder.random(TINY, DataType.FLOAT, 1);
        Lora.apply(decoder, new LoraConfig(2, 4, 0, List.of("q_proj", "v_proj")), 1);
        assertEquals(List.of(Q, V), StepFlops.adapted(decoder.linears()));
    }
}
