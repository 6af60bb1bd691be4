package dev.moelora.proto.frame;

import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import java.util.zip.CRC32C;

/**
 * Test-side fixtures for tensor frames: headers, payloads, and an independent encoding of the
 * documented message layout ([int32 LE header length][header][payload]) written from the spec, not
 * from {@link TensorFrameSender}, so receiver tests do not trust the code they check.
 *
 * <p>Must never be used by main code.
 */
final class TestFrames {
    static final long RUN = 42;

    private TestFrames() {}

    /** A FLOAT32 tensor description with every addressing field set to a non-default value. */
    static TensorFrameHeader.Builder tensor(long... shape) {
        TensorFrameHeader.Builder b = TensorFrameHeader.newBuilder()
                .setRunId(RUN).setStep(3).setMicroBatch(1).setLayer(5).setModule(1).setExpert(2).setSource(1)
                .setDirection(Direction.FORWARD_INPUT).setDtype(DType.FLOAT32);
        for (long dim : shape) {
            b.addShape(dim);
        }
        return b;
    }

    /** A FAILURE frame as the spec describes it: tensor()'s addressing fields, one chunk, no tensor, and {@code text}. */
    static TensorFrameHeader.Builder failure(String text) {
        return TensorFrameHeader.newBuilder()
                .setRunId(RUN).setStep(3).setMicroBatch(1).setLayer(5).setModule(1).setExpert(2).setSource(2)
                .setDirection(Direction.FAILURE).setChunkCount(1).setFailure(text);
    }

    static float[] randomFloats(int count, long seed) {
        Random random = new Random(seed);
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return values;
    }

    static byte[] littleEndian(float[] values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        buffer.asFloatBuffer().put(values);
        return buffer.array();
    }

    static int crc32c(byte[] bytes, int offset, int length) {
        CRC32C crc = new CRC32C();
        crc.update(bytes, offset, length);
        return (int) crc.getValue();
    }

    /** One message: {@code header} verbatim (chunk fields and CRC as given) followed by {@code payload}. */
    static byte[] message(TensorFrameHeader header, byte[] payload) {
        byte[] headerBytes = header.toByteArray();
        ByteBuffer message = ByteBuffer.allocate(Integer.BYTES + headerBytes.length + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        message.putInt(headerBytes.length).put(headerBytes).put(payload);
        return message.array();
    }

    /** The tensor {@code tensor} split into chunks of {@code chunkBytes} (the last one shorter), each with its offset and CRC. */
    static List<byte[]> chunkedMessages(TensorFrameHeader.Builder tensor, byte[] payload, int chunkBytes) {
        int count = Math.max(1, (payload.length + chunkBytes - 1) / chunkBytes);
        List<byte[]> messages = new ArrayList<>();
        for (int index = 0; index < count; index++) {
            int offset = index * chunkBytes;
            int length = Math.min(chunkBytes, payload.length - offset);
            byte[] chunk = new byte[length];
            System.arraycopy(payload, offset, chunk, 0, length);
            TensorFrameHeader header = tensor.clone()
                    .setChunkIndex(index).setChunkCount(count).setChunkOffset(offset)
                    .setPayloadCrc32C(crc32c(chunk, 0, length))
                    .build();
            messages.add(message(header, chunk));
        }
        return messages;
    }

    /** A tensor as the sink saw it: the first chunk's header and a copy of the delivered bytes. */
    record Delivered(TensorFrameHeader header, byte[] payload) {}

    /** Records delivered tensors and accepted failure frames; destinations come from a function of the header (null rejects). */
    static final class RecordingSink implements TensorFrameReceiver.Sink {
        final List<Delivered> delivered = new ArrayList<>();
        final List<TensorFrameHeader> failures = new ArrayList<>();
        private final Function<TensorFrameHeader, ByteBuffer> destinations;

        RecordingSink(Function<TensorFrameHeader, ByteBuffer> destinations) {
            this.destinations = destinations;
        }

        /** A fresh direct buffer of exactly the tensor's size for every tensor. */
        static RecordingSink exactDestinations() {
            return new RecordingSink(header -> ByteBuffer.allocateDirect((int) FrameLayout.tensorBytes(header)));
        }

        @Override
        public ByteBuffer destination(TensorFrameHeader tensor) {
            return destinations.apply(tensor);
        }

        @Override
        public void onTensor(TensorFrameHeader tensor, ByteBuffer destination) {
            byte[] bytes = new byte[(int) FrameLayout.tensorBytes(tensor)];
            destination.duplicate().get(bytes);
            delivered.add(new Delivered(tensor, bytes));
        }

        @Override
        public boolean onFailure(TensorFrameHeader failure) {
            failures.add(failure);
            return true;
        }
    }
}
