package dev.moelora.model.bert;

/**
 * Shape of a BERT-family encoder. Names follow Hugging Face's {@code BertConfig}.
 *
 * @param vocabSize     V
 * @param hidden        C
 * @param layers        L
 * @param heads         H (C must divide by H)
 * @param intermediate  F, the feed-forward width
 * @param maxPositions  longest sequence the position embeddings cover
 * @param typeVocabSize number of token types (segments)
 * @param layerNormEps  LayerNorm epsilon
 */
public record BertConfig(int vocabSize, int hidden, int layers, int heads, int intermediate,
                         int maxPositions, int typeVocabSize, double layerNormEps) {
    public BertConfig {
        if (hidden % heads != 0) throw new IllegalArgumentException("hidden " + hidden + " is not a multiple of heads " + heads);
    }

    /** all-MiniLM-L6-v2 (sentence-transformers), the embedded default. */
    public static BertConfig miniLmL6() {
        return new BertConfig(30522, 384, 6, 12, 1536, 512, 2, 1e-12);
    }
}
