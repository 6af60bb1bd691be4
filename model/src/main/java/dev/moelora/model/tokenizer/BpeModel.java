package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The {@code model} section of a BPE {@code tokenizer.json}: the vocabulary, the merges by rank, and
 * how one pre-tokenized word becomes ids, exactly as Hugging Face tokenizers' {@code BPE::merge_word}
 * and {@code Word::merge_all} do it: start from the word's characters (or the {@code <0xNN>} tokens of
 * their UTF-8 bytes when {@code byte_fallback} is on, or {@code unk_token}, fused or not), then apply
 * the lowest-ranked merge present, leftmost first, until none applies.
 *
 * <p>It sees one word at a time and must never normalize, split or otherwise change a word: that
 * belongs to the pipeline around it. Immutable apart from a bounded cache of words already merged,
 * which is safe to share between threads.
 */
final class BpeModel {

    /** tokenizers' default BPE cache capacity; beyond it new words are merged but not remembered. */
    private static final int CACHE_CAPACITY = 10_000;
    /** Longer words are rare and would mostly fill the cache with text seen once (tokenizers uses 256 too). */
    private static final int CACHEABLE_WORD_LENGTH = 256;

    private final Map<String, Integer> vocab;
    private final PairRanks ranks;
    /** The id each merge produces, {@code (M)} indexed by rank. */
    private final int[] mergedIdByRank;
    /** Ids of {@code <0x00>..<0xFF>}, {@code (256)}, or null without byte fallback. */
    private final int[] byteFallbackIds;
    /** -1 when the model has no unk_token. */
    private final int unkId;
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final String source;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    private BpeModel(Map<String, Integer> vocab, PairRanks ranks, int[] mergedIdByRank, int[] byteFallbackIds,
                     int unkId, boolean fuseUnk, boolean ignoreMerges, String source) {
        this.vocab = vocab;
        this.ranks = ranks;
        this.mergedIdByRank = mergedIdByRank;
        this.byteFallbackIds = byteFallbackIds;
        this.unkId = unkId;
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        this.source = source;
    }

    /** Reads {@code model}, which must be {@code {"type": "BPE", ...}}; options it does not implement are rejected. */
    static BpeModel read(TokenizerJson json, JsonNode model) {
        json.type(model, "model", List.of("BPE"));
        JsonNode dropout = model.get("dropout");
        if (dropout != null && !dropout.isNull() && !(dropout.isNumber() && dropout.doubleValue() == 0.0)) {
            throw json.fail("model.dropout", "is " + dropout, "null or 0 (BPE dropout is a training-time option, not implemented)");
        }
        for (String affix : List.of("continuing_subword_prefix", "end_of_word_suffix")) {
            String value = json.optionalText(model, affix, "model." + affix);
            if (value != null && !value.isEmpty()) {
                throw json.fail("model." + affix, "is \"" + value + "\"", "null or \"\" (subword affixes are not implemented)");
            }
        }

        JsonNode vocabNode = json.object(model, "vocab", "model.vocab", "an object mapping each token to its id");
        Map<String, Integer> vocab = new HashMap<>(vocabNode.size() * 2);
        Map<Integer, String> tokenById = new HashMap<>(vocabNode.size() * 2);
        for (Map.Entry<String, JsonNode> entry : vocabNode.properties()) {
            String path = "model.vocab." + entry.getKey();
            JsonNode idNode = entry.getValue();
            if (!idNode.isInt() || idNode.intValue() < 0) {
                throw json.fail(path, "is " + TokenizerJson.abbreviate(idNode), "a non-negative integer id");
            }
            String previous = tokenById.putIfAbsent(idNode.intValue(), entry.getKey());
            if (previous != null) {
                throw json.fail(path, "is " + idNode + ", the id of \"" + previous + "\" too", "each id used once");
            }
            vocab.put(entry.getKey(), idNode.intValue());
        }

        JsonNode merges = json.array(model, "merges", "model.merges", "an array of merges, each \"a b\" or [\"a\", \"b\"]");
        PairRanks ranks = new PairRanks(merges.size());
        int[] mergedIdByRank = new int[merges.size()];
        for (int rank = 0; rank < merges.size(); rank++) {
            String path = "model.merges[" + rank + "]";
            String[] pair = mergePair(json, merges.get(rank), path);
            int left = mergeTokenId(json, vocab, pair[0], path);
            int right = mergeTokenId(json, vocab, pair[1], path);
            int merged = mergeTokenId(json, vocab, pair[0] + pair[1], path);
            int earlier = ranks.rank(left, right);
            if (earlier >= 0) {
                throw json.fail(path, "repeats merge " + earlier + " (\"" + pair[0] + "\" + \"" + pair[1] + "\")", "each pair merged once");
            }
            ranks.put(left, right, rank);
            mergedIdByRank[rank] = merged;
        }

        String unkToken = json.optionalText(model, "unk_token", "model.unk_token");
        int unkId = -1;
        if (unkToken != null) {
            Integer id = vocab.get(unkToken);
            if (id == null) {
                throw json.fail("model.unk_token", "is \"" + unkToken + "\", which model.vocab does not contain", "a token of model.vocab");
            }
            unkId = id;
        }
        int[] byteFallbackIds = null;
        if (json.optionalBool(model, "byte_fallback", "model.byte_fallback", false)) {
            byteFallbackIds = new int[256];
            for (int b = 0; b < 256; b++) {
                String token = byteToken(b);
                Integer id = vocab.get(token);
                if (id == null) {
                    throw json.fail("model.vocab", "has no byte token " + token + " although model.byte_fallback is true",
                            "all 256 tokens <0x00>..<0xFF>");
                }
                byteFallbackIds[b] = id;
            }
        }
        return new BpeModel(vocab, ranks, mergedIdByRank, byteFallbackIds, unkId,
                json.optionalBool(model, "fuse_unk", "model.fuse_unk", false),
                json.optionalBool(model, "ignore_merges", "model.ignore_merges", false),
                json.source);
    }

    /** The ids of one pre-tokenized word; the array is shared with the cache, so callers must not modify it. */
    int[] ids(String word) {
        if (ignoreMerges) {
            Integer whole = vocab.get(word);
            if (whole != null) {
                return new int[] {whole};
            }
        }
        int[] cached = cache.get(word);
        if (cached != null) {
            return cached;
        }
        int[] ids = merge(initialSymbols(word));
        if (word.length() < CACHEABLE_WORD_LENGTH && cache.size() < CACHE_CAPACITY) {
            cache.put(word, ids);
        }
        return ids;
    }

    Map<String, Integer> vocab() {
        return vocab;
    }

    /** The id of {@code unk_token}, or -1 when the model has none. */
    int unkId() {
        return unkId;
    }

    static String byteToken(int b) {
        return String.format("<0x%02X>", b);
    }

    /** One symbol per character: its token, its bytes' fallback tokens, or unk (one per run when fused). */
    private int[] initialSymbols(String word) {
        int[] symbols = new int[word.length()];
        int count = 0;
        boolean previousUnknown = false;
        for (int i = 0; i < word.length(); ) {
            int end = i + Character.charCount(word.codePointAt(i));
            String character = word.substring(i, end);
            Integer id = vocab.get(character);
            if (id != null) {
                symbols = ensure(symbols, count + 1);
                symbols[count++] = id;
                previousUnknown = false;
            } else if (byteFallbackIds != null) {
                byte[] bytes = character.getBytes(StandardCharsets.UTF_8);
                symbols = ensure(symbols, count + bytes.length);
                for (byte b : bytes) {
                    symbols[count++] = byteFallbackIds[b & 0xFF];
                }
                previousUnknown = false;
            } else if (unkId >= 0) {
                if (!(fuseUnk && previousUnknown)) {
                    symbols = ensure(symbols, count + 1);
                    symbols[count++] = unkId;
                }
                previousUnknown = true;
            } else {
                // tokenizers silently drops such a character; losing text without a word is worse than stopping.
                throw new IllegalArgumentException("character U+" + String.format("%04X", word.codePointAt(i))
                        + " is not in the vocabulary of " + source + ", which has neither byte_fallback nor an unk_token");
            }
            i = end;
        }
        return Arrays.copyOf(symbols, count);
    }

    private static int[] ensure(int[] array, int length) {
        return length <= array.length ? array : Arrays.copyOf(array, Math.max(length, array.length * 2));
    }

    /**
     * tokenizers' {@code Word::merge_all}: a min-heap of (rank, position) over a doubly linked list of
     * symbols, so a word of n symbols takes O(n log n). An entry is stale, and skipped, when its left
     * symbol was merged away or its pair no longer produces the entry's token, exactly the checks the
     * reference makes, so ties and stale entries resolve as they do there.
     */
    private int[] merge(int[] symbols) {
        int n = symbols.length;
        if (n < 2) {
            return symbols;
        }
        int[] prev = new int[n];
        int[] next = new int[n];
        boolean[] removed = new boolean[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        LongMinHeap queue = new LongMinHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            push(queue, symbols[i], symbols[i + 1], i);
        }
        int alive = n;
        while (!queue.isEmpty()) {
            long top = queue.pop();
            int rank = (int) (top >>> 32);
            int pos = (int) top;
            int right = next[pos];
            if (removed[pos] || right < 0) {
                continue;
            }
            int current = ranks.rank(symbols[pos], symbols[right]);
            if (current < 0 || mergedIdByRank[current] != mergedIdByRank[rank]) {
                continue;
            }
            symbols[pos] = mergedIdByRank[rank];
            removed[right] = true;
            alive--;
            next[pos] = next[right];
            if (next[pos] >= 0) {
                prev[next[pos]] = pos;
            }
            if (prev[pos] >= 0) {
                push(queue, symbols[prev[pos]], symbols[pos], prev[pos]);
            }
            if (next[pos] >= 0) {
                push(queue, symbols[pos], symbols[next[pos]], pos);
            }
        }
        int[] ids = new int[alive];
        for (int i = 0, k = 0; i >= 0; i = next[i]) {
            ids[k++] = symbols[i];
        }
        return ids;
    }

    private void push(LongMinHeap queue, int left, int right, int pos) {
        int rank = ranks.rank(left, right);
        if (rank >= 0) {
            queue.push(((long) rank << 32) | pos);
        }
    }

    private static String[] mergePair(TokenizerJson json, JsonNode merge, String path) {
        if (merge.isTextual()) {
            // The older format: one string, the two tokens separated by the single space no BPE token contains.
            String[] parts = merge.textValue().split(" ", -1);
            if (parts.length == 2 && !parts[0].isEmpty() && !parts[1].isEmpty()) {
                return parts;
            }
        } else if (merge.isArray() && merge.size() == 2 && merge.get(0).isTextual() && merge.get(1).isTextual()) {
            return new String[] {merge.get(0).textValue(), merge.get(1).textValue()};
        }
        throw json.fail(path, "is " + TokenizerJson.abbreviate(merge), "\"a b\" (two tokens and one space) or [\"a\", \"b\"]");
    }

    private static int mergeTokenId(TokenizerJson json, Map<String, Integer> vocab, String token, String path) {
        Integer id = vocab.get(token);
        if (id == null) {
            throw json.fail(path, "uses or makes \"" + token + "\", which model.vocab does not contain",
                    "merges of vocabulary tokens into a vocabulary token");
        }
        return id;
    }

    /** Merge rank of each (left id, right id) pair: open addressing on the pair packed into one long. */
    private static final class PairRanks {
        private static final long EMPTY = -1L;
        private final long[] keys;
        private final int[] values;
        private final int mask;

        PairRanks(int expected) {
            int capacity = Integer.highestOneBit(Math.max(4, expected * 2 - 1)) << 1;
            keys = new long[capacity];
            Arrays.fill(keys, EMPTY);
            values = new int[capacity];
            mask = capacity - 1;
        }

        void put(int left, int right, int rank) {
            long key = pack(left, right);
            int slot = slot(key);
            while (keys[slot] != EMPTY) {
                slot = (slot + 1) & mask;
            }
            keys[slot] = key;
            values[slot] = rank;
        }

        /** The rank of the merge of this pair, or -1 when there is none. */
        int rank(int left, int right) {
            long key = pack(left, right);
            for (int slot = slot(key); keys[slot] != EMPTY; slot = (slot + 1) & mask) {
                if (keys[slot] == key) {
                    return values[slot];
                }
            }
            return -1;
        }

        private static long pack(int left, int right) {
            return ((long) left << 32) | (right & 0xFFFFFFFFL);
        }

        private int slot(long key) {
            return (int) ((key * 0x9E3779B97F4A7C15L) >>> 40) & mask;
        }
    }

    /** A binary min-heap of longs; (rank << 32 | position) orders by rank, then leftmost position. */
    private static final class LongMinHeap {
        private long[] heap;
        private int size;

        LongMinHeap(int capacity) {
            heap = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long value) {
            if (size == heap.length) {
                heap = Arrays.copyOf(heap, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (heap[parent] <= value) {
                    break;
                }
                heap[i] = heap[parent];
                i = parent;
            }
            heap[i] = value;
        }

        long pop() {
            long top = heap[0];
            long last = heap[--size];
            int i = 0;
            while (true) {
                int child = 2 * i + 1;
                if (child >= size) {
                    break;
                }
                if (child + 1 < size && heap[child + 1] < heap[child]) {
                    child++;
                }
                if (last <= heap[child]) {
                    break;
                }
                heap[i] = heap[child];
                i = child;
            }
            heap[i] = last;
            return top;
        }
    }
}
