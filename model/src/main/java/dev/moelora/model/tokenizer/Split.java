package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * tokenizers' {@code Split} pre-tokenizer (Llama 3's and Qwen2's word split), and the {@code Digits}
 * one, which is a Split on single numeric characters: the pattern's matches and the text between
 * them become pieces, kept, dropped or glued to a neighbour as {@code behavior} says, with
 * {@code invert} swapping which stretches count as matches — as {@code NormalizedString::split} does.
 *
 * <p>The reference compiles the pattern with Oniguruma; here it is a java.util.regex pattern with
 * {@link Pattern#UNICODE_CHARACTER_CLASS}, so that {@code \s}, {@code \d} and case-insensitive groups
 * are Unicode as Oniguruma's are, and matches are iterated as the {@code onig} crate does. The two
 * dialects agree only on part of the syntax, so a pattern is read only if it keeps to that part:
 * escapes {@code \s \S \d \D}, general categories {@code \p{L}}/{@code \P{Lu}} etc., control and
 * hex escapes, escaped punctuation; groups {@code (?:}, {@code (?i:}, {@code (?i)}, look-around
 * and atomic groups. Anything else ({@code \w}, {@code \h}, {@code \v}, anchors, POSIX brackets,
 * other inline options, back-references, {@code {n,m}+}) is refused naming what was found, never
 * compiled to something that might match differently.
 *
 * @param behavior what happens to the matched stretches
 * @param invert whether the pattern's matches are the stretches between delimiters rather than the delimiters
 */
record Split(Pattern pattern, Behavior behavior, boolean invert) {

    /** tokenizers' {@code SplitDelimiterBehavior}, by the names its files use. */
    enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    /** A stretch of the text, {@code [start, end)}, and whether it is a delimiter. */
    private record Stretch(int start, int end, boolean match) {}

    private static final int FLAGS = Pattern.UNICODE_CHARACTER_CLASS | Pattern.UNIX_LINES;
    private static final String ESCAPES = "sSdDpPrntfeaxu";
    private static final List<String> GROUP_OPENINGS = List.of("(?:", "(?i:", "(?i)", "(?=", "(?!", "(?<=", "(?<!", "(?>");
    private static final Pattern GENERAL_CATEGORY = Pattern.compile("\\{[A-Z][a-z]?}");

    /** Reads a {@code Split} pre-tokenizer at {@code path}. */
    static Split read(TokenizerJson json, JsonNode node, String path) {
        JsonNode patternNode = json.object(node, "pattern", path + ".pattern", "{\"Regex\": \"...\"} or {\"String\": \"...\"}");
        String behaviorName = json.text(node, "behavior", path + ".behavior");
        Behavior behavior;
        try {
            behavior = Behavior.valueOf(behaviorName);
        } catch (IllegalArgumentException e) {
            throw json.fail(path + ".behavior", "is \"" + behaviorName + "\"", "one of " + List.of(Behavior.values()));
        }
        // tokenizers' deserializer requires invert; so does this reader.
        boolean invert = json.bool(node, "invert", path + ".invert");
        return new Split(compile(json, patternNode, path + ".pattern"), behavior, invert);
    }

    /** tokenizers' {@code Digits}: each numeric character ({@code \p{N}}, Rust's {@code char::is_numeric}) its own piece, or runs of them. */
    static Split digits(TokenizerJson json, JsonNode node, String path) {
        boolean individual = json.bool(node, "individual_digits", path + ".individual_digits");
        return new Split(Pattern.compile("\\p{N}", FLAGS), individual ? Behavior.Isolated : Behavior.Contiguous, false);
    }

    /** The non-empty pieces of {@code piece}, in order; only the first can start the input. */
    void split(PreTokenizer.Piece piece, Consumer<PreTokenizer.Piece> out) {
        String text = piece.text();
        for (Stretch s : behave(stretches(text))) {
            if (!s.match() && s.end() > s.start()) {
                out.accept(new PreTokenizer.Piece(text.substring(s.start(), s.end()), piece.atInputStart() && s.start() == 0));
            }
        }
    }

    /**
     * The pattern's matches and the gaps between them, covering the text, as tokenizers' {@code find_matches}
     * over the {@code onig} crate's {@code find_iter}: an empty match right where the previous match ended is
     * skipped (the search moves one character on), and {@code invert} flips every stretch.
     */
    private List<Stretch> stretches(String text) {
        List<Stretch> stretches = new ArrayList<>();
        if (text.isEmpty()) {
            stretches.add(new Stretch(0, 0, invert));
            return stretches;
        }
        Matcher matcher = pattern.matcher(text);
        int previous = 0;
        int searchFrom = 0;
        int lastMatchEnd = -1;
        while (searchFrom <= text.length() && matcher.find(searchFrom)) {
            int start = matcher.start();
            int end = matcher.end();
            if (start == end && end == lastMatchEnd) {
                searchFrom += searchFrom < text.length() ? Character.charCount(text.codePointAt(searchFrom)) : 1;
                continue;
            }
            searchFrom = end;
            lastMatchEnd = end;
            if (previous != start) {
                stretches.add(new Stretch(previous, start, invert));
            }
            stretches.add(new Stretch(start, end, !invert));
            previous = end;
        }
        if (previous != text.length()) {
            stretches.add(new Stretch(previous, text.length(), invert));
        }
        return stretches;
    }

    /** The stretches to keep, each marked {@code match=true} if it is to be dropped, as tokenizers' behaviours fold them. */
    private List<Stretch> behave(List<Stretch> stretches) {
        List<Stretch> result = new ArrayList<>();
        switch (behavior) {
            case Removed -> result.addAll(stretches);
            case Isolated -> stretches.forEach(s -> result.add(new Stretch(s.start(), s.end(), false)));
            case Contiguous, MergedWithPrevious -> {
                boolean previousMatch = false;
                for (Stretch s : stretches) {
                    boolean glue = behavior == Behavior.Contiguous ? s.match() == previousMatch : s.match() && !previousMatch;
                    if (glue && !result.isEmpty()) {
                        Stretch last = result.remove(result.size() - 1);
                        result.add(new Stretch(last.start(), s.end(), false));
                    } else {
                        result.add(new Stretch(s.start(), s.end(), false));
                    }
                    previousMatch = s.match();
                }
            }
            case MergedWithNext -> {
                boolean previousMatch = false;
                for (int i = stretches.size() - 1; i >= 0; i--) {
                    Stretch s = stretches.get(i);
                    if (s.match() && !previousMatch && !result.isEmpty()) {
                        Stretch last = result.remove(result.size() - 1);
                        result.add(new Stretch(s.start(), last.end(), false));
                    } else {
                        result.add(new Stretch(s.start(), s.end(), false));
                    }
                    previousMatch = s.match();
                }
                Collections.reverse(result);
            }
        }
        return result;
    }

    private static Pattern compile(TokenizerJson json, JsonNode patternNode, String path) {
        boolean isString = patternNode.has("String");
        if (patternNode.size() != 1 || !(isString || patternNode.has("Regex"))) {
            throw json.fail(path, "is " + TokenizerJson.abbreviate(patternNode), "{\"Regex\": \"...\"} or {\"String\": \"...\"}");
        }
        String fieldPath = path + (isString ? ".String" : ".Regex");
        String source = json.text(patternNode, isString ? "String" : "Regex", fieldPath);
        if (source.isEmpty()) {
            throw json.fail(fieldPath, "is empty", "a non-empty pattern (an empty one matches everywhere)");
        }
        if (isString) {
            return Pattern.compile(Pattern.quote(source), FLAGS);
        }
        String unsupported = unsupportedConstruct(source);
        if (unsupported != null) {
            throw json.fail(fieldPath, "is \"" + source + "\", which uses " + unsupported,
                    "a regex within the syntax Oniguruma and java.util.regex read alike (see Split)");
        }
        try {
            return Pattern.compile(source, FLAGS);
        } catch (PatternSyntaxException e) {
            throw json.fail(fieldPath, "is \"" + source + "\", not a valid regex (" + e.getDescription() + " at index " + e.getIndex() + ")",
                    "a valid Oniguruma regex");
        }
    }

    /** The first construct of {@code regex} outside the syntax both engines read alike, or null. */
    private static String unsupportedConstruct(String regex) {
        int classDepth = 0;
        for (int i = 0; i < regex.length(); i++) {
            int at = i;
            char c = regex.charAt(i);
            char next = i + 1 < regex.length() ? regex.charAt(i + 1) : 0;
            if (c == '\\') {
                boolean alphanumeric = (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9');
                if (alphanumeric && ESCAPES.indexOf(next) < 0) {
                    return "the escape \\" + next;
                }
                if (next == 'p' || next == 'P') {
                    Matcher category = GENERAL_CATEGORY.matcher(regex).region(i + 2, regex.length());
                    if (!category.lookingAt()) {
                        return "a property other than a general category at index " + i;
                    }
                    i = category.end() - 1;
                    continue;
                }
                i++;
            } else if (classDepth > 0) {
                if (c == '[' && next == ':') {
                    return "a POSIX bracket [: at index " + i;
                }
                classDepth += c == '[' ? 1 : c == ']' ? -1 : 0;
            } else if (c == '[') {
                int first = next == '^' ? i + 2 : i + 1;
                if (first < regex.length() && regex.charAt(first) == ']') {
                    return "a character class opening with ] at index " + i;
                }
                if (first < regex.length() && regex.charAt(first) == '[' && first + 1 < regex.length() && regex.charAt(first + 1) == ':') {
                    return "a POSIX bracket [: at index " + first;
                }
                classDepth = 1;
            } else if (c == '^' || c == '$') {
                return "the anchor " + c;
            } else if (c == '(' && next == '?' && GROUP_OPENINGS.stream().noneMatch(g -> regex.startsWith(g, at))) {
                return "the group opening " + regex.substring(i, Math.min(regex.length(), i + 4));
            } else if (c == '}' && next == '+') {
                return "}+ (possessive in Java, a repeated interval in Oniguruma)";
            }
        }
        return null;
    }
}
