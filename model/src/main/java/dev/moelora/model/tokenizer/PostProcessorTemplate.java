package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToIntFunction;
import java.util.stream.IntStream;

/**
 * One template of a {@code TemplateProcessing} post-processor in a Hugging Face {@code tokenizer.json}
 * ({@code single} or {@code pair}), with the ids of its special tokens, applied to already tokenized
 * sequences as tokenizers' {@code TemplateProcessing::apply_template} does: pieces in order, each
 * special token's ids and each sequence's ids under the piece's type id.
 *
 * <p>It must never put in an id the vocabulary does not give the special token, and never accept a
 * template that leaves out or repeats one of its sequences: such a file is rejected naming the field.
 * It does not tokenize or truncate; it only says how many ids it adds, so that the caller can cut.
 */
final class PostProcessorTemplate {

    private sealed interface Piece permits SpecialPiece, SequencePiece {
        int typeId();

        /** The ids this piece puts in, given the sequences (A first). */
        int[] idsIn(int[][] sequences);
    }

    /** @param ids the special token's ids, {@code (S)} */
    private record SpecialPiece(int[] ids, int typeId) implements Piece {
        @Override
        public int[] idsIn(int[][] sequences) {
            return ids;
        }
    }

    /** @param index 0 for sequence "A", 1 for "B" */
    private record SequencePiece(int index, int typeId) implements Piece {
        @Override
        public int[] idsIn(int[][] sequences) {
            return sequences[index];
        }
    }

    private final String source;
    /** The template's field, {@code post_processor.single} or {@code post_processor.pair}. */
    private final String path;
    private final List<Piece> pieces;
    private final int sequenceCount;

    private PostProcessorTemplate(String source, String path, List<Piece> pieces, int sequenceCount) {
        this.source = source;
        this.path = path;
        this.pieces = List.copyOf(pieces);
        this.sequenceCount = sequenceCount;
    }

    /** The {@code single} template of TemplateProcessing {@code post}: sequence A once; {@code vocabulary} gives a token's id or -1. */
    static PostProcessorTemplate single(TokenizerJson json, JsonNode post, ToIntFunction<String> vocabulary) {
        return single(json, post, "post_processor", vocabulary);
    }

    /** As {@link #single(TokenizerJson, JsonNode, ToIntFunction)} for a TemplateProcessing at {@code path} (inside a Sequence). */
    static PostProcessorTemplate single(TokenizerJson json, JsonNode post, String path, ToIntFunction<String> vocabulary) {
        return read(json, post, path, "single", List.of("A"), vocabulary);
    }

    /** The {@code pair} template of TemplateProcessing {@code post}: sequences A and B once each. */
    static PostProcessorTemplate pair(TokenizerJson json, JsonNode post, ToIntFunction<String> vocabulary) {
        return read(json, post, "post_processor", "pair", List.of("A", "B"), vocabulary);
    }

    /** A single template that adds nothing, for a file whose post-processor adds no ids (or that has none). */
    static PostProcessorTemplate sequenceOnly(String source) {
        return new PostProcessorTemplate(source, "post_processor.single", List.of(new SequencePiece(0, 0)), 1);
    }

    /** Ids and type ids of the template with {@code sequences} (one per sequence, A first) in their places. */
    Encoding apply(int[]... sequences) {
        if (sequences.length != sequenceCount) {
            throw new IllegalArgumentException("template '" + path + "' of " + source + " takes " + sequenceCount
                    + " sequences; got " + sequences.length);
        }
        IntStream.Builder ids = IntStream.builder();
        IntStream.Builder typeIds = IntStream.builder();
        for (Piece piece : pieces) {
            for (int id : piece.idsIn(sequences)) {
                ids.add(id);
                typeIds.add(piece.typeId());
            }
        }
        return new Encoding(ids.build().toArray(), typeIds.build().toArray());
    }

    /** How many ids the template adds around the sequences. */
    int specialCount() {
        return pieces.stream().mapToInt(p -> p instanceof SpecialPiece special ? special.ids().length : 0).sum();
    }

    /** How many sequence ids fit in {@code maxLength} beside the special tokens; an error naming the template when none would. */
    int budget(int maxLength) {
        int specials = specialCount();
        if (maxLength < specials) {
            throw new IllegalArgumentException("maxLength " + maxLength + " cannot hold the " + specials
                    + " special tokens that field '" + path + "' of " + source + " adds; expected maxLength >= " + specials);
        }
        return maxLength - specials;
    }

    /** The special ids before the first sequence, {@code (P)}. */
    int[] leadingIds() {
        int firstSequence = 0;
        while (pieces.get(firstSequence) instanceof SpecialPiece) {
            firstSequence++;
        }
        return idsOf(pieces.subList(0, firstSequence));
    }

    /** The special ids after the last sequence, {@code (S)}. */
    int[] trailingIds() {
        int afterLastSequence = pieces.size();
        while (pieces.get(afterLastSequence - 1) instanceof SpecialPiece) {
            afterLastSequence--;
        }
        return idsOf(pieces.subList(afterLastSequence, pieces.size()));
    }

    private static int[] idsOf(List<Piece> specials) {
        return specials.stream().flatMapToInt(p -> IntStream.of(((SpecialPiece) p).ids())).toArray();
    }

    /**
     * A template must use each of its sequences exactly once. tokenizers loads any list of pieces and
     * finds out only when applying one (a "B" in a single template indexes past its one input, a
     * repeated "A" repeats the text); here the file is rejected when read. {@code type_id} is required
     * on every piece, as tokenizers' own deserializer requires it. Special-token ids must be the ones
     * the vocabulary gives their tokens, which tokenizers does not check.
     */
    private static PostProcessorTemplate read(TokenizerJson json, JsonNode post, String postPath, String name, List<String> sequenceNames,
                                              ToIntFunction<String> vocabulary) {
        String path = postPath + "." + name;
        JsonNode array = json.array(post, name, path, "an array of SpecialToken and Sequence pieces");
        String specialsPath = postPath + ".special_tokens";
        JsonNode specials = json.object(post, "special_tokens", specialsPath, "an object of special tokens");
        String expected = "each of " + sequenceNames + " exactly once in a " + name + " template";
        List<Piece> pieces = new ArrayList<>();
        boolean[] seen = new boolean[sequenceNames.size()];
        for (int i = 0; i < array.size(); i++) {
            String piecePath = path + "[" + i + "]";
            JsonNode piece = array.get(i);
            if (piece.has("SpecialToken")) {
                JsonNode special = piece.get("SpecialToken");
                String tokenName = json.text(special, "id", piecePath + ".SpecialToken.id");
                pieces.add(new SpecialPiece(specialIds(json, specials, specialsPath, tokenName, vocabulary),
                        json.nonNegativeInt(special, "type_id", piecePath + ".SpecialToken.type_id")));
            } else if (piece.has("Sequence")) {
                JsonNode sequence = piece.get("Sequence");
                String sequenceName = json.text(sequence, "id", piecePath + ".Sequence.id");
                int index = sequenceNames.indexOf(sequenceName);
                if (index < 0 || seen[index]) {
                    throw json.fail(piecePath + ".Sequence.id", "is \"" + sequenceName + "\"" + (index < 0 ? "" : " a second time"), expected);
                }
                seen[index] = true;
                pieces.add(new SequencePiece(index, json.nonNegativeInt(sequence, "type_id", piecePath + ".Sequence.type_id")));
            } else {
                throw json.fail(piecePath, "is " + TokenizerJson.abbreviate(piece), "{\"SpecialToken\": ...} or {\"Sequence\": ...}");
            }
        }
        for (int k = 0; k < seen.length; k++) {
            if (!seen[k]) {
                throw json.fail(path, "has no Sequence piece \"" + sequenceNames.get(k) + "\"", expected);
            }
        }
        return new PostProcessorTemplate(json.source, path, pieces, sequenceNames.size());
    }

    private static int[] specialIds(TokenizerJson json, JsonNode specials, String specialsPath, String tokenName,
                                    ToIntFunction<String> vocabulary) {
        String path = specialsPath + "." + tokenName;
        JsonNode special = json.object(specials, tokenName, path, "the ids and tokens of special token " + tokenName);
        JsonNode ids = special.get("ids");
        JsonNode tokens = special.get("tokens");
        if (ids == null || !ids.isArray() || tokens == null || !tokens.isArray() || ids.size() != tokens.size()) {
            throw json.fail(path, "is " + TokenizerJson.abbreviate(special), "equally long \"ids\" and \"tokens\" arrays");
        }
        int[] result = new int[ids.size()];
        for (int k = 0; k < result.length; k++) {
            String token = tokens.get(k).asText();
            int id = vocabulary.applyAsInt(token);
            if (!ids.get(k).isInt() || id < 0 || id != ids.get(k).intValue()) {
                throw json.fail(path + ".ids[" + k + "]", "is " + ids.get(k) + " for \"" + token + "\"",
                        "the id the vocabulary gives it (" + (id < 0 ? "absent" : id) + ")");
            }
            result[k] = id;
        }
        return result;
    }
}
