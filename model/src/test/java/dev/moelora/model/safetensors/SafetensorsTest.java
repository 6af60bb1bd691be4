package dev.moelora.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class SafetensorsTest {

    @TempDir Path dir;

    // ---- round trips through our own writer ----

    @Test
    void f32RoundTripKeepsNamesShapesValuesAndMetadata() throws IOException {
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        tensors.put("layer.1.weight", Nd4j.create(new float[] {1.5f, -2.25f, 3e-8f, Float.MAX_VALUE, -0f, 7f}, new long[] {2, 3}, 'c'));
        tensors.put("layer.0.bias", Nd4j.create(new float[] {0.125f, -1f, 1e30f}, new long[] {3}, 'c'));
        tensors.put("scale", Nd4j.scalar(2.5f));
        tensors.put("empty", Nd4j.create(DataType.FLOAT, new long[] {0, 4}, 'c'));
        Path file = dir.resolve("adapter.safetensors");

        Safetensors.write(file, tensors, Map.of("format", "pt", "step", "7"));

        try (SafetensorsFile f = Safetensors.open(file)) {
            assertEquals(Map.of("format", "pt", "step", "7"), f.metadata());
            assertEquals(List.of("empty", "layer.0.bias", "layer.1.weight", "scale"),
                    f.tensors().stream().map(SafetensorsFile.TensorInfo::name).toList());
            for (Map.Entry<String, INDArray> e : tensors.entrySet()) {
                SafetensorsFile.TensorInfo info = f.info(e.getKey());
                assertEquals("F32", info.dtype());
                assertArrayEquals(e.getValue().shape(), info.shape(), e.getKey());
                INDArray back = f.read(e.getKey());
                assertEquals(DataType.FLOAT, back.dataType());
                assertArrayEquals(e.getValue().shape(), back.shape(), e.getKey());
                assertArrayEquals(rowMajorFloats(e.getValue()), rowMajorFloats(back), e.getKey());
            }
            assertEquals(2.5f, f.readFloat("scale").getFloat(0));
            assertEquals(0, f.read("scale").rank());
            assertTrue(f.read("empty").isEmpty());
        }
    }

    @Test
    void f64RoundTripKeepsDoublePrecisionAndReadFloatNarrows() throws IOException {
        double[] values = {1.0 / 3.0, Math.PI, -Double.MIN_VALUE, 1e300, -0.0, Double.MAX_VALUE};
        Path file = dir.resolve("f64.safetensors");

        Safetensors.write(file, Map.of("x", Nd4j.create(values, new long[] {3, 2}, 'c'),
                "s", Nd4j.scalar(1.0 / 7.0), "z", Nd4j.create(DataType.DOUBLE, new long[] {2, 0, 3}, 'c')), Map.of());

        try (SafetensorsFile f = Safetensors.open(file)) {
            assertEquals(Map.of(), f.metadata());
            assertEquals("F64", f.info("x").dtype());
            INDArray exact = f.read("x");
            assertEquals(DataType.DOUBLE, exact.dataType());
            assertArrayEquals(new long[] {3, 2}, exact.shape());
            assertArrayEquals(values, exact.data().asDouble());
            assertEquals(1.0 / 7.0, f.read("s").getDouble(0));
            assertArrayEquals(new long[] {2, 0, 3}, f.read("z").shape());

            INDArray narrowed = f.readFloat("x");
            assertEquals(DataType.FLOAT, narrowed.dataType());
            float[] expected = new float[values.length];
            for (int i = 0; i < values.length; i++) {
                expected[i] = (float) values[i];
            }
            assertArrayEquals(expected, narrowed.data().asFloat());
        }
    }

    @Test
    void writeStoresTransposedAndViewArraysInRowMajorOrder() throws IOException {
        INDArray base = Nd4j.create(new float[] {1, 2, 3, 4, 5, 6}, new long[] {2, 3}, 'c');
        Path file = dir.resolve("views.safetensors");

        Safetensors.write(file, Map.of("t", base.transpose(), "row", base.getRow(1)), Map.of());

        try (SafetensorsFile f = Safetensors.open(file)) {
            INDArray t = f.read("t");
            assertArrayEquals(new long[] {3, 2}, t.shape());
            assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, t.data().asFloat());
            assertArrayEquals(new float[] {4, 5, 6}, f.read("row").data().asFloat());
        }
    }

    @Test
    void writtenBytesFollowTheFormatSpecWithAlignedHeader() throws IOException {
        Path file = dir.resolve("spec.safetensors");

        Safetensors.write(file, Map.of(
                "b", Nd4j.create(new double[] {-2.0}, new long[] {1}, 'c'),
                "a", Nd4j.create(new float[] {1.0f, -2.0f}, new long[] {2}, 'c')), Map.of("k", "v"));

        byte[] bytes = Files.readAllBytes(file);
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + headerLength) % 8, "data section must start 8-byte aligned");
        JsonNode header = new ObjectMapper().readTree(new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8));
        assertEquals("v", header.get("__metadata__").get("k").textValue());
        assertEquals("F32", header.get("a").get("dtype").textValue());
        assertEquals("[2]", header.get("a").get("shape").toString());
        assertEquals("[0,8]", header.get("a").get("data_offsets").toString());
        assertEquals("F64", header.get("b").get("dtype").textValue());
        assertEquals("[8,16]", header.get("b").get("data_offsets").toString());
        byte[] data = Arrays.copyOfRange(bytes, 8 + (int) headerLength, bytes.length);
        // 1.0f = 0x3F800000, -2.0f = 0xC0000000, -2.0 = 0xC000000000000000, all little-endian
        assertArrayEquals(new byte[] {0, 0, (byte) 0x80, 0x3F, 0, 0, 0, (byte) 0xC0, 0, 0, 0, 0, 0, 0, 0, (byte) 0xC0}, data);
    }

    @Test
    void atomicWriteReplacesTheFileAndLeavesNoTempFile() throws IOException {
        Path file = dir.resolve("w.safetensors");
        Safetensors.write(file, Map.of("x", Nd4j.scalar(1f)), Map.of());
        Safetensors.write(file, Map.of("y", Nd4j.scalar(2f)), Map.of());

        try (Stream<Path> listing = Files.list(dir)) {
            assertEquals(List.of(file.getFileName()), listing.map(Path::getFileName).toList());
        }
        try (SafetensorsFile f = Safetensors.open(file)) {
            assertEquals(List.of("y"), f.tensors().stream().map(SafetensorsFile.TensorInfo::name).toList());
        }
    }

    @Test
    void writeRejectsUnsupportedDataTypeAndKeepsTheOldFile() throws IOException {
        Path file = dir.resolve("keep.safetensors");
        Safetensors.write(file, Map.of("x", Nd4j.scalar(1f)), Map.of());
        byte[] before = Files.readAllBytes(file);

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
                Safetensors.write(file, Map.of("ints", Nd4j.create(new int[] {1, 2}, new long[] {2}, DataType.INT)), Map.of()));

        assertMessage(e, file, "'ints'", "INT");
        assertArrayEquals(before, Files.readAllBytes(file));
        try (Stream<Path> listing = Files.list(dir)) {
            assertEquals(1, listing.count());
        }
    }

    @Test
    void writeRejectsTheReservedMetadataName() {
        Path file = dir.resolve("reserved.safetensors");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
                Safetensors.write(file, Map.of("__metadata__", Nd4j.scalar(1f)), Map.of()));
        assertMessage(e, file, "__metadata__", "reserved");
        assertTrue(Files.notExists(file));
    }

    @Test
    void writeRejectsNullMetadataValue() {
        Path file = dir.resolve("nullmeta.safetensors");
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("step", null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () ->
                Safetensors.write(file, Map.of("x", Nd4j.scalar(1f)), metadata));
        assertMessage(e, file, "'step'", "null");
        assertTrue(Files.notExists(file));
    }

    // ---- hand-built files and the reference writer ----

    @Test
    void handBuiltHalfAndBfloat16ValuesDecodeToKnownFloats() throws IOException {
        String header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]}}";
        ByteBuffer data = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        for (int bits : new int[] {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0xFC00, 0x8000, 0x0400}) {
            data.putShort((short) bits);
        }
        for (int bits : new int[] {0x3F80, 0x4049, 0xBF00, 0x7F80}) {
            data.putShort((short) bits);
        }
        Path file = rawFile("halves.safetensors", header, data.array());

        try (SafetensorsFile f = Safetensors.open(file)) {
            INDArray h = f.readFloat("h");
            assertEquals(DataType.FLOAT, h.dataType());
            assertArrayEquals(new long[] {2, 4}, h.shape());
            assertArrayEquals(new float[] {1f, -2f, 65504f, 0x1p-24f, Float.POSITIVE_INFINITY,
                    Float.NEGATIVE_INFINITY, -0f, 0x1p-14f}, h.data().asFloat());
            assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(h.getFloat(1, 2)));
            INDArray b = f.read("b");
            assertEquals(DataType.FLOAT, b.dataType());
            assertArrayEquals(new float[] {1f, 3.140625f, -0.5f, Float.POSITIVE_INFINITY}, b.data().asFloat());
        }
    }

    @Test
    void everyHalfPrecisionBitPatternDecodesToItsIeeeValue() {
        for (int bits = 0; bits <= 0xFFFF; bits++) {
            int sign = bits >>> 15;
            int exponent = (bits >>> 10) & 0x1F;
            int mantissa = bits & 0x3FF;
            float actual = SafetensorsFile.halfToFloat((short) bits);
            if (exponent == 0x1F && mantissa != 0) {
                assertTrue(Float.isNaN(actual), "0x" + Integer.toHexString(bits));
                continue;
            }
            // IEEE 754 binary16: subnormal m * 2^-24, normal (1 + m/1024) * 2^(e-15), e = 31 infinite
            double magnitude = exponent == 0x1F ? Double.POSITIVE_INFINITY
                    : exponent == 0 ? mantissa * Math.pow(2, -24)
                    : (1 + mantissa / 1024.0) * Math.pow(2, exponent - 15);
            double expected = sign == 1 ? -magnitude : magnitude;
            assertEquals(Double.doubleToRawLongBits(expected), Double.doubleToRawLongBits(actual),
                    "0x" + Integer.toHexString(bits));
        }
    }

    @Test
    void floatToHalfInvertsEveryHalfAndRoundsMidpointsToEven() {
        for (int h = 0; h < 0x10000; h++) {
            float f = SafetensorsFile.halfToFloat((short) h);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(SafetensorsFile.halfToFloat(Safetensors.floatToHalf(f))), "NaN stays NaN: " + Integer.toHexString(h));
                continue;
            }
            assertEquals(h, Safetensors.floatToHalf(f) & 0xFFFF, "half " + Integer.toHexString(h) + " = " + f);
            int next = h + 1;
            if ((next & 0x7FFF) >= 0x7C00 || (next & 0x7FFF) == 0) continue; // up to infinity, or the sign boundary
            float up = SafetensorsFile.halfToFloat((short) next), mid = (float) (((double) f + up) / 2);
            int even = (h & 1) == 0 ? h : next;
            assertEquals(even, Safetensors.floatToHalf(mid) & 0xFFFF, "midpoint of " + f + " and " + up + " goes to the even one");
            assertEquals(h, Safetensors.floatToHalf(Math.nextAfter(mid, f)) & 0xFFFF, "just below the midpoint after " + f);
            assertEquals(next, Safetensors.floatToHalf(Math.nextAfter(mid, up)) & 0xFFFF, "just above the midpoint after " + f);
        }
        assertEquals(0x7C00, Safetensors.floatToHalf(65520f) & 0xFFFF, "65520 rounds past 65504 to infinity");
        assertEquals(0x7BFF, Safetensors.floatToHalf(Math.nextDown(65520f)) & 0xFFFF, "just below 65520 is 65504");
        assertEquals(0x8000, Safetensors.floatToHalf(-1e-30f) & 0xFFFF, "underflow keeps the sign");
    }

    @Test
    void floatToBfloat16InvertsEveryBfloat16AndRoundsMidpointsToEven() {
        for (int h = 0; h < 0x10000; h++) {
            float f = SafetensorsFile.bfloat16ToFloat((short) h);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(SafetensorsFile.bfloat16ToFloat(Safetensors.floatToBfloat16(f))), "NaN stays NaN: " + Integer.toHexString(h));
                continue;
            }
            assertEquals(h, Safetensors.floatToBfloat16(f) & 0xFFFF, "bfloat16 " + Integer.toHexString(h) + " = " + f);
            int next = h + 1;
            if ((next & 0x7FFF) >= 0x7F80 || (next & 0x7FFF) == 0) continue;
            float up = SafetensorsFile.bfloat16ToFloat((short) next), mid = (float) (((double) f + up) / 2);
            assertEquals((h & 1) == 0 ? h : next, Safetensors.floatToBfloat16(mid) & 0xFFFF, "midpoint of " + f + " and " + up);
            assertEquals(h, Safetensors.floatToBfloat16(Math.nextAfter(mid, f)) & 0xFFFF, "just below the midpoint after " + f);
            assertEquals(next, Safetensors.floatToBfloat16(Math.nextAfter(mid, up)) & 0xFFFF, "just above the midpoint after " + f);
        }
    }

    @Test
    void writeStoresEachTensorAsTheDtypeNamedRounded() throws IOException {
        Path file = dir.resolve("mixed.safetensors");
        INDArray values = Nd4j.create(new double[] {1.0 / 3, -2.7182818284590452, 1e-7, 70000, 0.5}, new long[] {5}, DataType.DOUBLE);
        Map<String, INDArray> tensors = new LinkedHashMap<>();
        for (String d : List.of("F16", "BF16", "F32", "F64")) tensors.put(d, values);
        tensors.put("float", values.castTo(DataType.FLOAT));
        Safetensors.write(file, tensors, Map.of("format", "pt"), Map.of("F16", "F16", "BF16", "BF16", "F32", "F32", "F64", "F64"));
        try (SafetensorsFile f = Safetensors.open(file)) {
            for (String d : List.of("F16", "BF16", "F32", "F64")) assertEquals(d, f.info(d).dtype());
            assertEquals("F32", f.info("float").dtype(), "a tensor without a named dtype is written by its own type");
            for (int i = 0; i < 5; i++) {
                float x = (float) values.getDouble(i);
                assertEquals(SafetensorsFile.halfToFloat(Safetensors.floatToHalf(x)), f.readFloat("F16").getFloat(i), 0f);
                assertEquals(SafetensorsFile.bfloat16ToFloat(Safetensors.floatToBfloat16(x)), f.readFloat("BF16").getFloat(i), 0f);
                assertEquals(x, f.readFloat("F32").getFloat(i), 0f);
                assertEquals(values.getDouble(i), f.read("F64").getDouble(i), 0.0);
            }
            assertEquals(Float.POSITIVE_INFINITY, f.readFloat("F16").getFloat(3), "70000 is beyond half range");
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Safetensors.write(dir.resolve("bad.safetensors"), tensors, Map.of(), Map.of("F16", "I8")));
        assertTrue(e.getMessage().contains("'F16' cannot be stored as I8"), e.getMessage());
    }

    @Test
    void readsFileWrittenByReferenceLibrary() throws IOException {
        // written by make_golden.py with the reference safetensors 0.8.0; values restated from there
        Path file = dir.resolve("golden.safetensors");
        try (InputStream in = SafetensorsTest.class.getResourceAsStream("/safetensors/golden.safetensors")) {
            Files.copy(in, file);
        }

        try (SafetensorsFile f = Safetensors.open(file)) {
            assertEquals(Map.of("format", "np", "source", "make_golden.py"), f.metadata());
            assertEquals(List.of("bf16", "empty", "f16", "f32", "f64", "i64", "scalar"),
                    f.tensors().stream().map(SafetensorsFile.TensorInfo::name).toList());

            float[] f32 = new float[12];
            for (int k = 0; k < 12; k++) {
                f32[k] = k * 0.5f - 2;
            }
            INDArray a = f.read("f32");
            assertArrayEquals(new long[] {3, 4}, a.shape());
            assertArrayEquals(f32, a.data().asFloat());
            assertEquals(-2 + 0.5f * (4 * 2 + 1), a.getFloat(2, 1));

            INDArray d = f.read("f64");
            assertEquals(DataType.DOUBLE, d.dataType());
            assertArrayEquals(new double[] {1.0 / 3.0, Math.PI, -Double.MIN_VALUE, 1e300}, d.data().asDouble());

            assertArrayEquals(new float[] {1f, -2f, 65504f, 0x1p-24f, Float.POSITIVE_INFINITY, -0f},
                    f.readFloat("f16").data().asFloat());
            assertArrayEquals(new long[] {2, 3}, f.readFloat("f16").shape());
            assertArrayEquals(new float[] {1f, 3.140625f, -0.5f, 0x1p100f}, f.readFloat("bf16").data().asFloat());
            assertEquals(7.25f, f.readFloat("scalar").getFloat(0));
            assertEquals(0, f.readFloat("scalar").rank());
            assertArrayEquals(new long[] {0, 3}, f.readFloat("empty").shape());

            assertEquals("I64", f.info("i64").dtype());
            IOException e = assertThrows(IOException.class, () -> f.read("i64"));
            assertMessage(e, file, "'i64'", "I64");
        }
    }

    @Test
    void readsTensorStoredBeyondTwoGibibytes() throws IOException {
        long begin = 3L << 30;
        String header = "{\"far\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" + begin + "," + (begin + 8) + "]}}";
        Path file = rawFile("sparse.safetensors", header, new byte[0]);
        long dataStart = Files.size(file);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.seek(dataStart + begin); // the file stays sparse: nothing is written before the tensor
            raf.write(new byte[] {0, 0, (byte) 0x80, 0x3F, 0, 0, 0, (byte) 0xC0});
        }

        try (SafetensorsFile f = Safetensors.open(file)) {
            assertArrayEquals(new float[] {1f, -2f}, f.readFloat("far").data().asFloat());
        }
    }

    @Test
    void infoOfAbsentTensorNamesFileAndTensor() throws IOException {
        Path file = dir.resolve("one.safetensors");
        Safetensors.write(file, Map.of("x", Nd4j.scalar(1f)), Map.of());
        try (SafetensorsFile f = Safetensors.open(file)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.info("missing.weight"));
            assertMessage(e, file, "'missing.weight'");
            assertThrows(IllegalArgumentException.class, () -> f.readFloat("missing.weight"));
        }
    }

    // ---- malformed input ----

    @Test
    void fileShorterThanTheLengthPrefixIsRejected() throws IOException {
        Path file = dir.resolve("short.safetensors");
        Files.write(file, new byte[] {1, 0, 0, 0, 0});
        assertMessage(assertThrows(IOException.class, () -> Safetensors.open(file)), file, "5 bytes", "8-byte");
    }

    @Test
    void headerLengthLargerThanTheFileIsRejected() throws IOException {
        Path file = dir.resolve("long.safetensors");
        Files.write(file, withPrefix(1000, "{}".getBytes(StandardCharsets.UTF_8)));
        assertMessage(assertThrows(IOException.class, () -> Safetensors.open(file)), file, "header length", "1000", "only 2 bytes");
    }

    @Test
    void headerLengthAboveTheCapIsRejectedBeforeAllocating() throws IOException {
        Path file = dir.resolve("huge.safetensors");
        Files.write(file, withPrefix(200L << 20, "{}".getBytes(StandardCharsets.UTF_8)));
        assertMessage(assertThrows(IOException.class, () -> Safetensors.open(file)), file, "header length", "cap");
        Files.write(file, withPrefix(-1L, "{}".getBytes(StandardCharsets.UTF_8)));
        assertMessage(assertThrows(IOException.class, () -> Safetensors.open(file)), file, "18446744073709551615", "cap");
    }

    @Test
    void headerThatIsNotUtf8IsRejected() throws IOException {
        byte[] json = {'{', '"', (byte) 0xFF, (byte) 0xFE, '"', ':', '1', '}'};
        Path file = dir.resolve("latin.safetensors");
        Files.write(file, withPrefix(json.length, json));
        assertMessage(assertThrows(IOException.class, () -> Safetensors.open(file)), file, "header", "UTF-8");
    }

    static Stream<Arguments> malformedHeaders() {
        String ok = "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
        return Stream.of(
                Arguments.of("{not json", "", "expected JSON"),
                Arguments.of("[1,2]", "", "expected a JSON object"),
                Arguments.of("{} {}", "", "expected JSON"),
                Arguments.of("{\"w\":{" + ok + "},\"w\":{" + ok + "}}", "", "Duplicate field 'w'"),
                Arguments.of("{\"w\":3}", "'w'", "entry"),
                Arguments.of("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "'w'", "'dtype': missing"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "'w'", "'shape': missing"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", "'w'", "'data_offsets': missing"),
                Arguments.of("{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", "'w'", "'dtype': expected a string"),
                Arguments.of("{\"w\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", "'w'", "unknown dtype \"F17\""),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", "'w'", "'shape': expected an array"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "'w'", "'shape': expected an array of non-negative integers"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "'w'", "'shape': expected an array of non-negative integers"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", "'w'", "'data_offsets': expected an array of 2"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "'w'", "end 0 is before begin 8"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "'w'", "outside the data section of 8 bytes"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "'w'", "expected 12 for shape [3] of F32"),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", "'w'", "more elements than fit"),
                Arguments.of("{\"a\":{" + ok + "},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "'b'", "overlaps tensor 'a'"),
                Arguments.of("{\"__metadata__\":{\"step\":7}}", "", "'__metadata__.step': expected a string"),
                Arguments.of("{\"__metadata__\":[\"x\"]}", "", "'__metadata__': expected an object"));
    }

    @ParameterizedTest(name = "{2}")
    @MethodSource("malformedHeaders")
    void malformedHeaderIsRejectedNamingFileTensorAndProblem(String header, String tensor, String problem)
            throws IOException {
        Path file = rawFile("bad.safetensors", header, new byte[8]);
        IOException e = assertThrows(IOException.class, () -> Safetensors.open(file));
        assertMessage(e, file, tensor, problem);
    }

    // ---- helpers ----

    /** A file built from the format spec: LE header length, the header text, then {@code data}. */
    private Path rawFile(String name, String header, byte[] data) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer bytes = ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(json.length).put(json).put(data);
        Path file = dir.resolve(name);
        Files.write(file, bytes.array());
        return file;
    }

    private static byte[] withPrefix(long headerLength, byte[] rest) {
        return ByteBuffer.allocate(8 + rest.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(headerLength).put(rest).array();
    }

    /** ND4J gives empty arrays no data buffer at all. */
    private static float[] rowMajorFloats(INDArray a) {
        return a.isEmpty() ? new float[0] : a.dup('c').data().asFloat();
    }

    private static void assertMessage(Exception e, Path file, String... fragments) {
        String message = e.getMessage();
        assertTrue(message.contains(file.toString()), () -> "message does not name the file: " + message);
        for (String fragment : fragments) {
            assertTrue(message.contains(fragment), () -> "message lacks \"" + fragment + "\": " + message);
        }
    }
}
