package dev.moelora.model.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.files.DurableFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Reads and writes the safetensors weight format (https://github.com/huggingface/safetensors): an
 * 8-byte little-endian header length, a UTF-8 JSON header naming each tensor's dtype, shape and byte
 * range, then the raw little-endian row-major data.
 *
 * <p>{@link #write} stores FLOAT arrays as F32 and DOUBLE arrays as F64, or each tensor as the
 * dtype the caller names (F32, F16, BF16, F64), tensors sorted by name and packed back to back,
 * through a temporary sibling file that is renamed over the target, so a reader never sees a
 * half-written file. {@link #open} validates the whole header before any
 * tensor is read; see {@link SafetensorsFile}.
 *
 * <p>Must never write a file that this reader (or the reference implementation) would reject, never
 * leave a temporary file behind, and never convert a tensor to a narrower type silently: narrowing
 * happens only to a dtype the caller named, rounded to nearest with ties to even.
 */
public final class Safetensors {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Bytes converted per write call; keeps memory flat for tensors of any size. */

    private Safetensors() {}

    /**
     * Writes {@code tensors} (FLOAT as F32, DOUBLE as F64) sorted by name, with {@code metadata}
     * (empty for none) as the header's {@code __metadata__}. The data is written to a temporary file
     * in the same directory, forced to disk, then atomically renamed over {@code file}.
     *
     * @throws IllegalArgumentException if a tensor has another data type or a name is empty or
     *     {@code __metadata__}; nothing is written then
     */
    public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata)
            throws IOException {
        write(file, tensors, metadata, Map.of());
    }

    /**
     * As {@link #write(Path, Map, Map)}, with each tensor named in {@code dtypes} stored as that
     * dtype: F32, F16, BF16 or F64, from a FLOAT or DOUBLE array. Values are rounded to nearest,
     * ties to even; a DOUBLE bound for F16 or BF16 is rounded to float32 first, as PyTorch's
     * {@code .to(torch.float16)} does. Tensors not named keep write()'s rule (FLOAT as F32, DOUBLE
     * as F64).
     *
     * @throws IllegalArgumentException for another dtype or a name {@code tensors} lacks; nothing is written then
     */
    public static void write(Path file, Map<String, INDArray> tensors, Map<String, String> metadata, Map<String, String> dtypes)
            throws IOException {
        Objects.requireNonNull(tensors, "tensors");
        Objects.requireNonNull(dtypes, "dtypes");
        for (String name : dtypes.keySet()) {
            if (!tensors.containsKey(name)) throw new IllegalArgumentException(file + ": a dtype for '" + name + "', which is not written");
        }
        List<Entry> entries = new ArrayList<>();
        for (Map.Entry<String, INDArray> e : new TreeMap<>(tensors).entrySet()) {
            INDArray tensor = e.getValue();
            if (tensor == null) throw new IllegalArgumentException(file + ": tensor '" + e.getKey() + "' is null");
            String dtype = dtypes.containsKey(e.getKey()) ? requireFloating(file, e.getKey(), tensor, dtypes.get(e.getKey()))
                    : dtypeOf(file, e.getKey(), tensor);
            entries.add(new Entry(e.getKey(), dtype, tensor.shape(), () -> tensor));
        }
        write(file, entries, metadata);
    }

    /** Produces a tensor's values when the writer reaches it. */
    @FunctionalInterface
    public interface Values {
        INDArray get() throws IOException;
    }

    /**
     * One tensor to write: its name, the dtype it is stored as (F32, F16, BF16 or F64), its shape,
     * and its values (a FLOAT or DOUBLE array of that shape), asked for only when the writer gets
     * to it.
     */
    public record Entry(String name, String dtype, long[] shape, Values values) {
        public Entry {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }
    }

    /**
     * Writes the entries sorted by name, asking for one tensor's values at a time, so a file larger
     * than memory can be written from another file tensor by tensor; rounding as
     * {@link #write(Path, Map, Map, Map)} says. Values of another shape or type than declared fail
     * the write, and the old file stays.
     */
    public static void write(Path file, List<Entry> entries, Map<String, String> metadata) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(entries, "entries");
        Objects.requireNonNull(metadata, "metadata");
        SortedMap<String, Entry> sorted = new TreeMap<>();
        for (Entry e : entries) {
            if (e.name().isEmpty() || e.name().equals(SafetensorsFile.METADATA_KEY)) {
                throw new IllegalArgumentException(file + ": tensor name '" + e.name() + "' is not allowed (empty or reserved)");
            }
            if (!STORED.contains(e.dtype())) {
                throw new IllegalArgumentException(file + ": tensor '" + e.name() + "' cannot be stored as " + e.dtype() + " (only " + STORED + ")");
            }
            if (sorted.put(e.name(), e) != null) throw new IllegalArgumentException(file + ": tensor '" + e.name() + "' is given twice");
        }
        byte[] header = header(file, sorted, metadata);

        DurableFiles.write(file, out -> {
            ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            prefix.putLong(header.length).flip();
            writeFully(out, prefix);
            writeFully(out, ByteBuffer.wrap(header));
            for (Entry e : sorted.values()) {
                INDArray tensor = e.values().get();
                if (tensor == null || !Arrays.equals(tensor.shape(), e.shape())
                        || (tensor.dataType() != DataType.FLOAT && tensor.dataType() != DataType.DOUBLE)) {
                    throw new IllegalStateException(file + ": tensor '" + e.name() + "' was declared " + e.dtype() + " " + Arrays.toString(e.shape())
                            + " and its values are " + (tensor == null ? "null" : tensor.dataType() + " " + Arrays.toString(tensor.shape())));
                }
                writeData(out, tensor, e.dtype());
            }
        });
    }

    /** The dtypes the writer stores. */
    private static final java.util.Set<String> STORED = java.util.Set.of("F32", "F16", "BF16", "F64");

    /** Opens {@code file} and validates its header; tensor data is read later, one tensor at a time. */
    public static SafetensorsFile open(Path file) throws IOException {
        return SafetensorsFile.open(file);
    }

    /** The JSON header, padded with spaces so the data section starts 8-byte aligned. */
    private static byte[] header(Path file, SortedMap<String, Entry> entries, Map<String, String> metadata) {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(SafetensorsFile.METADATA_KEY);
            new TreeMap<>(metadata).forEach((key, value) -> {
                if (value == null) {
                    throw new IllegalArgumentException(file + ": metadata '" + key + "' has a null value");
                }
                meta.put(key, value);
            });
        }
        long offset = 0;
        for (Entry e : entries.values()) {
            long elements = 1;
            for (long d : e.shape()) elements *= d;
            long bytes = elements * SafetensorsFile.dtypeSize(e.dtype());
            ObjectNode entry = root.putObject(e.name());
            entry.put("dtype", e.dtype());
            ArrayNode shape = entry.putArray("shape");
            Arrays.stream(e.shape()).forEach(shape::add);
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = root.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] header = Arrays.copyOf(json, padded);
        Arrays.fill(header, json.length, padded, (byte) ' ');
        return header;
    }

    private static String dtypeOf(Path file, String name, INDArray tensor) {
        DataType type = tensor.dataType();
        if (type == DataType.FLOAT) {
            return "F32";
        }
        if (type == DataType.DOUBLE) {
            return "F64";
        }
        throw new IllegalArgumentException(
                file + ": tensor '" + name + "' has data type " + type
                        + "; write() stores only FLOAT (as F32) and DOUBLE (as F64)");
    }

    private static String requireFloating(Path file, String name, INDArray tensor, String dtype) {
        if (tensor == null || (tensor.dataType() != DataType.FLOAT && tensor.dataType() != DataType.DOUBLE)) {
            throw new IllegalArgumentException(file + ": tensor '" + name + "' is " + (tensor == null ? "null" : tensor.dataType())
                    + "; only FLOAT and DOUBLE arrays are stored as " + dtype);
        }
        return dtype;
    }

    private static void writeData(FileChannel out, INDArray tensor, String dtype) throws IOException {
        if (tensor.isEmpty()) {
            return;
        }
        // dup('c') gives a fresh row-major buffer holding exactly this tensor, whatever the source's
        // ordering, strides or view offset; its native bytes are the file's little-endian layout.
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new IOException("safetensors are little-endian; writing from a big-endian host is not supported");
        }
        if (dtype.equals("F16") || dtype.equals("BF16")) {
            writeHalves(out, tensor.castTo(DataType.FLOAT).dup('c'), dtype.equals("F16"));
            return;
        }
        INDArray rowMajor = tensor.castTo(dtype.equals("F32") ? DataType.FLOAT : DataType.DOUBLE).dup('c');
        ByteBuffer bytes = rowMajor.data().asNio();
        bytes.position(0).limit((int) (rowMajor.length() * rowMajor.dataType().width()));
        writeFully(out, bytes);
    }

    /** A FLOAT c-order array as 2-byte values, F16 or BF16, in chunks. */
    private static void writeHalves(FileChannel out, INDArray rowMajor, boolean f16) throws IOException {
        java.nio.FloatBuffer values = rowMajor.data().asNio().order(ByteOrder.nativeOrder()).asFloatBuffer();
        values.limit((int) rowMajor.length());
        ByteBuffer chunk = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        while (values.hasRemaining()) {
            chunk.clear();
            while (values.hasRemaining() && chunk.remaining() >= 2) {
                float v = values.get();
                chunk.putShort(f16 ? floatToHalf(v) : floatToBfloat16(v));
            }
            chunk.flip();
            writeFully(out, chunk);
        }
    }

    /**
     * IEEE 754 binary32 to binary16, rounded to nearest with ties to even; too large for a half is
     * infinity, NaN stays NaN (quiet, its sign and top payload bits kept).
     */
    static short floatToHalf(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000, abs = bits & 0x7FFF_FFFF;
        if (abs >= 0x7F80_0000) { // infinity or NaN
            return (short) (sign | 0x7C00 | (abs > 0x7F80_0000 ? 0x200 | ((abs >>> 13) & 0x3FF) : 0));
        }
        if (abs >= 0x477F_F000) { // >= 65520: rounds past the largest half, 65504
            return (short) (sign | 0x7C00);
        }
        if (abs < 0x3880_0000) { // below 2^-14, the smallest normal half: a multiple of 2^-24, exact in double
            return (short) (sign | (int) Math.rint(Float.intBitsToFloat(abs) * 0x1p24));
        }
        int half = ((((abs >>> 23) - 127 + 15) << 10) | ((abs >>> 13) & 0x3FF));
        int rest = abs & 0x1FFF;
        if (rest > 0x1000 || (rest == 0x1000 && (half & 1) == 1)) {
            half++; // a carry into the exponent is the right result
        }
        return (short) (sign | half);
    }

    /** binary32 to bfloat16 (its upper half), rounded to nearest with ties to even; NaN stays a quiet NaN. */
    static short floatToBfloat16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    private static void writeFully(FileChannel out, ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            out.write(bytes);
        }
    }
}
