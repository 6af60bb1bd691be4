package dev.moelora.model.safetensors;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * An open safetensors file whose header has been fully validated: every tensor's dtype is known,
 * its shape is non-negative, its byte range lies inside the data section, matches shape times dtype
 * size and overlaps no other tensor. Tensor data is read on demand, one tensor at a time, with
 * positioned reads, so files larger than 2 GiB are fine (one tensor must fit in one Java array).
 *
 * <p>Every problem with the file's content is an {@link IOException} whose message names the file,
 * the tensor (if any), the field and what was expected. Asking for a tensor the file does not hold
 * is the caller's mistake and an {@link IllegalArgumentException}.
 *
 * <p>Must never trust the header before checking it, never read outside a tensor's own byte range,
 * and never narrow F64 in {@link #read} (only {@link #readFloat} narrows, because it says so).
 */
public final class SafetensorsFile implements AutoCloseable {

    /** One header entry. {@code begin} and {@code end} are relative to the start of the data section. */
    public record TensorInfo(String name, String dtype, long[] shape, long begin, long end) {
        public TensorInfo {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }
    }

    static final String METADATA_KEY = "__metadata__";
    /** A header this large is not a weight file; refuse it before allocating. */
    static final long MAX_HEADER_BYTES = 100L << 20;
    /** Byte size per element of every dtype the format defines with whole-byte elements. */
    private static final Map<String, Integer> DTYPE_SIZES =
            Map.ofEntries(
                    Map.entry("BOOL", 1), Map.entry("U8", 1), Map.entry("I8", 1),
                    Map.entry("F8_E5M2", 1), Map.entry("F8_E4M3", 1),
                    Map.entry("I16", 2), Map.entry("U16", 2), Map.entry("F16", 2), Map.entry("BF16", 2),
                    Map.entry("I32", 4), Map.entry("U32", 4), Map.entry("F32", 4),
                    Map.entry("I64", 8), Map.entry("U64", 8), Map.entry("F64", 8));
    private static final int CHUNK_BYTES = 1 << 20;
    private static final ObjectMapper JSON =
            JsonMapper.builder()
                    .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                    .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                    .build();

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, String> metadata;
    private final Map<String, TensorInfo> tensors; // sorted by name

    private SafetensorsFile(
            Path file, FileChannel channel, long dataStart, Map<String, String> metadata,
            Map<String, TensorInfo> tensors) {
        this.file = file;
        this.channel = channel;
        this.dataStart = dataStart;
        this.metadata = metadata;
        this.tensors = tensors;
    }

    static SafetensorsFile open(Path file) throws IOException {
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            return parse(file, channel);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** The header's {@code __metadata__}, in header order; empty if absent. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** All tensors, sorted by name. */
    public List<TensorInfo> tensors() {
        return List.copyOf(tensors.values());
    }

    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new IllegalArgumentException(
                    file + ": no tensor '" + name + "' (the file holds " + tensors.size() + " tensors)");
        }
        return info;
    }

    /** F32, F16, BF16 and F64 as a new FLOAT array, c-order, in the stored shape. */
    public INDArray readFloat(String name) throws IOException {
        TensorInfo t = info(name);
        float[] out = new float[elementCountAsInt(t)];
        switch (t.dtype()) {
            case "F32" -> readChunks(t, Float.BYTES, (c, i) -> c.asFloatBuffer().get(out, i, c.remaining() / Float.BYTES));
            case "F64" -> readChunks(t, Double.BYTES, (c, i) -> {
                while (c.hasRemaining()) {
                    out[i++] = (float) c.getDouble();
                }
            });
            case "F16" -> readChunks(t, 2, (c, i) -> {
                while (c.hasRemaining()) {
                    out[i++] = halfToFloat(c.getShort());
                }
            });
            case "BF16" -> readChunks(t, 2, (c, i) -> {
                while (c.hasRemaining()) {
                    out[i++] = bfloat16ToFloat(c.getShort());
                }
            });
            default -> throw unsupported(t, "F32, F16, BF16 or F64");
        }
        return Nd4j.create(out, t.shape(), 'c');
    }

    /** Like {@link #readFloat}, except F64 becomes a DOUBLE array so no precision is lost. */
    public INDArray read(String name) throws IOException {
        TensorInfo t = info(name);
        if (!t.dtype().equals("F64")) {
            return readFloat(name);
        }
        double[] out = new double[elementCountAsInt(t)];
        readChunks(t, Double.BYTES, (c, i) -> c.asDoubleBuffer().get(out, i, c.remaining() / Double.BYTES));
        return Nd4j.create(out, t.shape(), 'c');
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    /** IEEE 754 binary16 to binary32; every half value, subnormals, infinities and NaN, is exact in float. */
    static float halfToFloat(short half) {
        int bits = half & 0xFFFF;
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >>> 10) & 0x1F;
        int mantissa = bits & 0x3FF;
        if (exponent == 0x1F) { // infinity (mantissa 0) or NaN, payload kept
            return Float.intBitsToFloat(sign | 0x7F80_0000 | (mantissa << 13));
        }
        if (exponent != 0) { // normal: rebias 15 -> 127
            return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
        }
        float magnitude = mantissa * 0x1p-24f; // zero or subnormal: mantissa * 2^-24, exact
        return sign != 0 ? -magnitude : magnitude;
    }

    /** bfloat16 is the upper half of a binary32. */
    static float bfloat16ToFloat(short bf16) {
        return Float.intBitsToFloat((bf16 & 0xFFFF) << 16);
    }

    static int dtypeSize(String dtype) {
        return DTYPE_SIZES.get(dtype);
    }

    private interface ChunkReader {
        /** {@code chunk} holds whole elements, little-endian; its first is element {@code first}. */
        void accept(ByteBuffer chunk, int first);
    }

    private void readChunks(TensorInfo t, int elementSize, ChunkReader reader) throws IOException {
        int chunkBytes = CHUNK_BYTES / elementSize * elementSize;
        ByteBuffer chunk = ByteBuffer.allocate((int) Math.min(chunkBytes, t.end() - t.begin()))
                .order(ByteOrder.LITTLE_ENDIAN);
        for (long at = t.begin(); at < t.end(); ) {
            chunk.clear().limit((int) Math.min(chunk.capacity(), t.end() - at));
            readFully(file, channel, dataStart + at, chunk, "tensor '" + t.name() + "'");
            chunk.flip();
            reader.accept(chunk, (int) ((at - t.begin()) / elementSize));
            at += chunk.limit();
        }
    }

    private int elementCountAsInt(TensorInfo t) throws IOException {
        long count = (t.end() - t.begin()) / dtypeSize(t.dtype());
        if (count > Integer.MAX_VALUE - 8) {
            throw new IOException(
                    file + ": tensor '" + t.name() + "' has " + count
                            + " elements; one INDArray read here holds at most 2^31 - 9");
        }
        return (int) count;
    }

    private IOException unsupported(TensorInfo t, String expected) {
        return new IOException(
                file + ": tensor '" + t.name() + "': dtype " + t.dtype() + " cannot be read as floating point; expected "
                        + expected);
    }

    // ---- header validation ----

    private static SafetensorsFile parse(Path file, FileChannel channel) throws IOException {
        long size = channel.size();
        if (size < 8) {
            throw malformed(file, null, "header length",
                    "file is " + size + " bytes, shorter than the 8-byte header length prefix");
        }
        ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(file, channel, 0, prefix, "header length");
        long headerLength = prefix.flip().getLong(); // unsigned on disk: negative here means >= 2^63
        if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
            throw malformed(file, null, "header length",
                    Long.toUnsignedString(headerLength) + " bytes exceeds the cap of " + MAX_HEADER_BYTES + " bytes");
        }
        if (headerLength > size - 8) {
            throw malformed(file, null, "header length",
                    headerLength + " bytes but only " + (size - 8) + " bytes follow the length prefix");
        }
        ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
        readFully(file, channel, 8, headerBytes, "header");
        JsonNode root = parseJson(file, headerBytes.flip());
        long dataLength = size - 8 - headerLength;

        Map<String, String> metadata = Map.of();
        Map<String, TensorInfo> tensors = new TreeMap<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            if (field.getKey().equals(METADATA_KEY)) {
                metadata = parseMetadata(file, field.getValue());
            } else {
                TensorInfo info = parseTensor(file, field.getKey(), field.getValue(), dataLength);
                tensors.put(info.name(), info);
            }
        }
        checkNoOverlap(file, tensors.values());
        return new SafetensorsFile(
                file, channel, 8 + headerLength, metadata, Collections.unmodifiableMap(tensors));
    }

    private static JsonNode parseJson(Path file, ByteBuffer bytes) throws IOException {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes)
                    .toString();
        } catch (CharacterCodingException e) {
            throw malformed(file, null, "header", "expected UTF-8 text, found invalid bytes (" + e + ")");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw malformed(file, null, "header", "expected JSON, " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw malformed(file, null, "header", "expected a JSON object, found " + describe(root));
        }
        return root;
    }

    private static Map<String, String> parseMetadata(Path file, JsonNode node) throws IOException {
        if (!node.isObject()) {
            throw malformed(file, null, METADATA_KEY,
                    "expected an object of string values, found " + describe(node));
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw malformed(file, null, METADATA_KEY + "." + e.getKey(),
                        "expected a string, found " + describe(e.getValue()));
            }
            metadata.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(metadata);
    }

    private static TensorInfo parseTensor(Path file, String name, JsonNode entry, long dataLength)
            throws IOException {
        if (!entry.isObject()) {
            throw malformed(file, name, "entry", "expected an object with dtype, shape and data_offsets, found "
                    + describe(entry));
        }
        JsonNode dtypeNode = required(file, name, entry, "dtype");
        if (!dtypeNode.isTextual()) {
            throw malformed(file, name, "dtype", "expected a string, found " + describe(dtypeNode));
        }
        String dtype = dtypeNode.textValue();
        if (!DTYPE_SIZES.containsKey(dtype)) {
            throw malformed(file, name, "dtype",
                    "unknown dtype \"" + dtype + "\", expected one of " + new TreeMap<>(DTYPE_SIZES).keySet());
        }
        long[] shape = nonNegativeLongs(file, name, "shape", required(file, name, entry, "shape"), -1);
        long[] offsets =
                nonNegativeLongs(file, name, "data_offsets", required(file, name, entry, "data_offsets"), 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (end < begin) {
            throw malformed(file, name, "data_offsets",
                    "end " + end + " is before begin " + begin);
        }
        if (end > dataLength) {
            throw malformed(file, name, "data_offsets",
                    "[" + begin + ", " + end + "] reaches outside the data section of " + dataLength + " bytes");
        }
        long expectedBytes;
        try {
            long count = 1;
            for (long dim : shape) {
                count = Math.multiplyExact(count, dim);
            }
            expectedBytes = Math.multiplyExact(count, DTYPE_SIZES.get(dtype));
        } catch (ArithmeticException overflow) {
            throw malformed(file, name, "shape", Arrays.toString(shape) + " has more elements than fit in a long");
        }
        if (end - begin != expectedBytes) {
            throw malformed(file, name, "data_offsets",
                    "[" + begin + ", " + end + "] spans " + (end - begin) + " bytes, expected " + expectedBytes
                            + " for shape " + Arrays.toString(shape) + " of " + dtype);
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static JsonNode required(Path file, String tensor, JsonNode entry, String field)
            throws IOException {
        JsonNode value = entry.get(field);
        if (value == null) {
            throw malformed(file, tensor, field, "missing");
        }
        return value;
    }

    /** A JSON array of non-negative integers that fit in a long; {@code length} -1 means any length. */
    private static long[] nonNegativeLongs(Path file, String tensor, String field, JsonNode node, int length)
            throws IOException {
        String expected = "expected an array of " + (length < 0 ? "" : length + " ") + "non-negative integers";
        if (!node.isArray() || (length >= 0 && node.size() != length)) {
            throw malformed(file, tensor, field, expected + ", found " + describe(node));
        }
        long[] values = new long[node.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw malformed(file, tensor, field, expected + ", found " + describe(node));
            }
            values[i] = v.longValue();
        }
        return values;
    }

    /** Non-empty byte ranges must be disjoint; gaps between tensors are allowed. */
    private static void checkNoOverlap(Path file, Iterable<TensorInfo> tensors) throws IOException {
        List<TensorInfo> byBegin = new ArrayList<>();
        tensors.forEach(t -> {
            if (t.end() > t.begin()) {
                byBegin.add(t);
            }
        });
        byBegin.sort(Comparator.comparingLong(TensorInfo::begin));
        for (int i = 1; i < byBegin.size(); i++) {
            TensorInfo previous = byBegin.get(i - 1);
            TensorInfo current = byBegin.get(i);
            if (current.begin() < previous.end()) {
                throw malformed(file, current.name(), "data_offsets",
                        "[" + current.begin() + ", " + current.end() + "] overlaps tensor '" + previous.name()
                                + "' at [" + previous.begin() + ", " + previous.end() + "]");
            }
        }
    }

    private static void readFully(Path file, FileChannel channel, long position, ByteBuffer into, String what)
            throws IOException {
        while (into.hasRemaining()) {
            if (channel.read(into, position + into.position()) < 0) {
                throw new IOException(
                        file + ": " + what + ": file ended at byte " + (position + into.position())
                                + " (was it truncated after opening?)");
            }
        }
    }

    private static IOException malformed(Path file, String tensor, String field, String problem) {
        String where = tensor == null ? "" : "tensor '" + tensor + "': ";
        return new IOException(file + ": " + where + "field '" + field + "': " + problem);
    }

    /** A JSON value for an error message, cut short so a hostile header cannot flood the log. */
    private static String describe(JsonNode node) {
        String text = String.valueOf(node);
        return text.length() <= 80 ? text : text.substring(0, 77) + "...";
    }
}
