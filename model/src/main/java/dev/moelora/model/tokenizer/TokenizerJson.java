package dev.moelora.model.tokenizer;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * One Hugging Face {@code tokenizer.json} being read: its parsed tree, the name it is reported under,
 * and field readers that word every failure the same way (file, JSON path of the field, what it
 * holds, what was expected).
 *
 * <p>It only reads and reports: it must never default a missing required field or quietly accept a
 * value it was not asked to accept, because a tokenizer that guesses produces ids the model never saw.
 */
final class TokenizerJson {

    final JsonNode root;
    final String source;

    private TokenizerJson(JsonNode root, String source) {
        this.root = root;
        this.source = source;
    }

    static TokenizerJson read(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return read(in, file.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer file " + file, e);
        }
    }

    static TokenizerJson read(InputStream in, String source) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(in);
        } catch (JacksonException e) {
            throw new IllegalArgumentException(
                    source + ": not valid JSON (" + e.getOriginalMessage() + "); expected a Hugging Face tokenizer.json", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tokenizer " + source, e);
        }
        TokenizerJson json = new TokenizerJson(root, source);
        if (root == null || !root.isObject()) {
            throw json.fail("(root)", root == null ? "is empty" : "is " + abbreviate(root), "a Hugging Face tokenizer.json object");
        }
        return json;
    }

    /** A required JSON object. */
    JsonNode object(JsonNode parent, String name, String path, String expected) {
        JsonNode node = parent.get(name);
        if (node == null || !node.isObject()) {
            throw fail(path, problem(node), expected);
        }
        return node;
    }

    /** A JSON object, or null when the field is absent or null (a component the file does not use). */
    JsonNode optionalObject(JsonNode parent, String name, String path, String expected) {
        JsonNode node = parent.get(name);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isObject()) {
            throw fail(path, problem(node), expected);
        }
        return node;
    }

    JsonNode array(JsonNode parent, String name, String path, String expected) {
        JsonNode node = parent.get(name);
        if (node == null || !node.isArray()) {
            throw fail(path, problem(node), expected);
        }
        return node;
    }

    String text(JsonNode parent, String name, String path) {
        JsonNode node = parent.get(name);
        if (node == null || !node.isTextual()) {
            throw fail(path, problem(node), "a string");
        }
        return node.textValue();
    }

    /** A string, or null when the field is absent or null. */
    String optionalText(JsonNode parent, String name, String path) {
        JsonNode node = parent.get(name);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isTextual()) {
            throw fail(path, problem(node), "a string or null");
        }
        return node.textValue();
    }

    /** A string of exactly one character (one code point), as Rust's {@code char} fields are. */
    int character(JsonNode parent, String name, String path) {
        String text = text(parent, name, path);
        if (text.codePointCount(0, text.length()) != 1) {
            throw fail(path, "is \"" + text + "\"", "a single character");
        }
        return text.codePointAt(0);
    }

    boolean bool(JsonNode parent, String name, String path) {
        JsonNode node = parent.get(name);
        if (node == null || !node.isBoolean()) {
            throw fail(path, problem(node), "true or false");
        }
        return node.booleanValue();
    }

    /** A boolean that tokenizers itself defaults when the field is absent (older files lack newer flags). */
    boolean optionalBool(JsonNode parent, String name, String path, boolean absent) {
        JsonNode node = parent.get(name);
        if (node == null || node.isNull()) {
            return absent;
        }
        return bool(parent, name, path);
    }

    int nonNegativeInt(JsonNode parent, String name, String path) {
        JsonNode node = parent.get(name);
        if (node == null || !node.isInt() || node.intValue() < 0) {
            throw fail(path, problem(node), "a non-negative integer");
        }
        return node.intValue();
    }

    int positiveInt(JsonNode parent, String name, String path) {
        JsonNode node = parent.get(name);
        if (node == null || !node.isInt() || node.intValue() < 1) {
            throw fail(path, problem(node), "a positive integer");
        }
        return node.intValue();
    }

    /** The {@code type} of a component, checked against the types this reader implements. */
    String type(JsonNode component, String path, List<String> supported) {
        String type = text(component, "type", path + ".type");
        if (!supported.contains(type)) {
            throw fail(path + ".type", "is \"" + type + "\"", "one of " + supported + " (the only " + path + " types implemented)");
        }
        return type;
    }

    IllegalArgumentException fail(String path, String problem, String expected) {
        return new IllegalArgumentException(source + ": field '" + path + "' " + problem + "; expected " + expected);
    }

    static String abbreviate(JsonNode node) {
        String text = node.toString();
        return text.length() <= 80 ? text : text.substring(0, 77) + "...";
    }

    private static String problem(JsonNode node) {
        return node == null ? "is missing" : "is " + abbreviate(node);
    }
}
