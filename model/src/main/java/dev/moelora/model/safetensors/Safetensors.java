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
import java.util.Arrays;
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
 * <p>{@link #write} stores FLOAT arrays as F32 and DOUBLE arrays as F64, tensors sorted by name and
 * packed back to back, through a temporary sibling file that is renamed over the target, so a
 * reader never sees a half-written file. {@link #open} validates the whole header before any
 * tensor is read; see {@link SafetensorsFile}.
 *
 * <p>Must never write a file that this reader (or the reference implementation) would reject, never
 * leave a temporary file behind, and never convert a tensor to a narrower type silently.
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
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(tensors, "tensors");
        Objects.requireNonNull(metadata, "metadata");
        SortedMap<String, INDArray> sorted = new TreeMap<>(tensors);
        byte[] header = header(file, sorted, metadata);

        DurableFiles.write(file, out -> {
            ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            prefix.putLong(header.length).flip();
            writeFully(out, prefix);
            writeFully(out, ByteBuffer.wrap(header));
            for (INDArray tensor : sorted.values()) {
                writeData(out, tensor);
            }
        });
    }

    /** Opens {@code file} and validates its header; tensor data is read later, one tensor at a time. */
    public static SafetensorsFile open(Path file) throws IOException {
        return SafetensorsFile.open(file);
    }

    /** The JSON header, padded with spaces so the data section starts 8-byte aligned. */
    private static byte[] header(Path file, SortedMap<String, INDArray> tensors, Map<String, String> metadata) {
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
        for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
            String name = e.getKey();
            INDArray tensor = e.getValue();
            if (name.isEmpty() || name.equals(SafetensorsFile.METADATA_KEY)) {
                throw new IllegalArgumentException(
                        file + ": tensor name '" + name + "' is not allowed (empty or reserved)");
            }
            if (tensor == null) {
                throw new IllegalArgumentException(file + ": tensor '" + name + "' is null");
            }
            String dtype = dtypeOf(file, name, tensor);
            long bytes = tensor.length() * SafetensorsFile.dtypeSize(dtype);
            ObjectNode entry = root.putObject(name);
            entry.put("dtype", dtype);
            ArrayNode shape = entry.putArray("shape");
            Arrays.stream(tensor.shape()).forEach(shape::add);
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

    private static void writeData(FileChannel out, INDArray tensor) throws IOException {
        if (tensor.isEmpty()) {
            return;
        }
        // dup('c') gives a fresh row-major buffer holding exactly this tensor, whatever the source's
        // ordering, strides or view offset; its native bytes are the file's little-endian layout.
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new IOException("safetensors are little-endian; writing from a big-endian host is not supported");
        }
        INDArray rowMajor = tensor.dup('c');
        ByteBuffer bytes = rowMajor.data().asNio();
        bytes.position(0).limit((int) (rowMajor.length() * rowMajor.dataType().width()));
        writeFully(out, bytes);
    }

    private static void writeFully(FileChannel out, ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            out.write(bytes);
        }
    }
}
