package dev.moelora.proto.frame;

import static dev.moelora.proto.frame.TestFrames.RUN;
import static dev.moelora.proto.frame.TestFrames.chunkedMessages;
import static dev.moelora.proto.frame.TestFrames.littleEndian;
import static dev.moelora.proto.frame.TestFrames.message;
import static dev.moelora.proto.frame.TestFrames.randomFloats;
import static dev.moelora.proto.frame.TestFrames.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.moelora.proto.frame.TestFrames.RecordingSink;
import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/**
 * Malformed and misdirected input fed straight to the handler: every drop is counted by kind and never
 * thrown. Messages come from {@link TestFrames}' encoding of the spec. Must never need a media driver.
 */
class TensorFrameReceiverTest {
    private static final int SESSION = 11;

    private final RecordingSink sink = RecordingSink.exactDestinations();
    private final TensorFrameReceiver receiver = new TensorFrameReceiver(run -> run == RUN, sink);

    private void feed(int session, byte[] message) {
        // at an offset inside a larger buffer, as in an Aeron term
        byte[] term = new byte[message.length + 24];
        System.arraycopy(message, 0, term, 16, message.length);
        receiver.onMessage(session, new UnsafeBuffer(term), 16, message.length);
    }

    private void feed(byte[] message) {
        feed(SESSION, message);
    }

    private static byte[] goodMessage(float[] values) {
        return chunkedMessages(tensor(values.length), littleEndian(values), Integer.MAX_VALUE).get(0);
    }

    private void assertOnlyDropped(FrameError kind, long count) {
        assertEquals(count, receiver.dropped(kind), kind.toString());
        assertEquals(count, receiver.droppedTotal(), "drops of other kinds");
    }

    @Test
    void aWellFormedSingleChunkFrameIsDeliveredWithItsHeader() {
        float[] values = randomFloats(10, 1);
        byte[] payload = littleEndian(values);
        feed(goodMessage(values));
        assertEquals(1, sink.delivered.size());
        TensorFrameHeader sent = tensor(10).setChunkCount(1).setPayloadCrc32C(TestFrames.crc32c(payload, 0, payload.length)).build();
        assertEquals(sent, sink.delivered.get(0).header(), "every header field as sent");
        assertArrayEquals(payload, sink.delivered.get(0).payload());
        assertEquals(0, receiver.droppedTotal());
    }

    @Test
    void aFlippedPayloadByteIsACrcMismatchAndTheNextGoodFrameStillArrives() {
        float[] values = randomFloats(16, 2);
        byte[] corrupt = goodMessage(values);
        corrupt[corrupt.length - 5] ^= 0x01;
        feed(corrupt);
        assertEquals(0, sink.delivered.size());
        assertOnlyDropped(FrameError.CRC_MISMATCH, 1);

        feed(goodMessage(values));
        assertEquals(1, sink.delivered.size());
        assertArrayEquals(littleEndian(values), sink.delivered.get(0).payload());
    }

    @Test
    void aMessageShorterThanItsLengthPrefixIsTruncated() {
        feed(Arrays.copyOf(goodMessage(randomFloats(4, 3)), 3));
        assertOnlyDropped(FrameError.TRUNCATED, 1);
    }

    @Test
    void aMessageCutInsideItsHeaderIsTruncated() {
        feed(Arrays.copyOf(goodMessage(randomFloats(4, 3)), 8));
        assertOnlyDropped(FrameError.TRUNCATED, 1);
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void aMessageCutInsideItsPayloadIsTruncated() {
        byte[] whole = goodMessage(randomFloats(64, 4));
        feed(Arrays.copyOf(whole, whole.length - 6));
        assertOnlyDropped(FrameError.TRUNCATED, 1);
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void aNegativeHeaderLengthIsMalformed() {
        byte[] message = goodMessage(randomFloats(4, 5));
        ByteBuffer.wrap(message).order(ByteOrder.LITTLE_ENDIAN).putInt(0, -7);
        feed(message);
        assertOnlyDropped(FrameError.MALFORMED_HEADER, 1);
    }

    @Test
    void headerBytesThatAreNotAProtobufMessageAreMalformed() {
        byte[] invalidWireType = {0x0F, 1, 2, 3};               // field 1 with wire type 7
        byte[] endlessVarint = new byte[12];
        Arrays.fill(endlessVarint, (byte) 0xFF);
        for (byte[] header : List.of(invalidWireType, endlessVarint)) {
            ByteBuffer message = ByteBuffer.allocate(4 + header.length + 8).order(ByteOrder.LITTLE_ENDIAN);
            message.putInt(header.length).put(header);
            feed(message.array());
        }
        assertOnlyDropped(FrameError.MALFORMED_HEADER, 2);
    }

    @Test
    void chunkIndexOutsideTheChunkCountIsMalformed() {
        byte[] payload = littleEndian(randomFloats(4, 6));
        feed(message(tensor(4).setChunkIndex(2).setChunkCount(2).setPayloadCrc32C(TestFrames.crc32c(payload, 0, 16)).build(), payload));
        feed(message(tensor(4).setChunkCount(0).setPayloadCrc32C(TestFrames.crc32c(payload, 0, 16)).build(), payload));
        assertOnlyDropped(FrameError.MALFORMED_HEADER, 2);
    }

    @Test
    void aPayloadLongerThanTheShapeIsAShapeMismatch() {
        byte[] payload = littleEndian(randomFloats(10, 7));
        feed(message(tensor(2, 4).setChunkCount(1).setPayloadCrc32C(TestFrames.crc32c(payload, 0, 40)).build(), payload));
        assertOnlyDropped(FrameError.SHAPE_MISMATCH, 1);
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void aNegativeDimensionIsAShapeMismatch() {
        byte[] payload = littleEndian(randomFloats(4, 8));
        feed(message(tensor(-2, -2).setChunkCount(1).setPayloadCrc32C(TestFrames.crc32c(payload, 0, 16)).build(), payload));
        assertOnlyDropped(FrameError.SHAPE_MISMATCH, 1);
    }

    @Test
    void aDestinationSmallerThanTheShapeDropsTheTensor() {
        RecordingSink small = new RecordingSink(header -> ByteBuffer.allocate(12));
        TensorFrameReceiver smallReceiver = new TensorFrameReceiver(run -> true, small);
        byte[] message = goodMessage(randomFloats(4, 9));
        smallReceiver.onMessage(SESSION, new UnsafeBuffer(message), 0, message.length);
        assertEquals(1, smallReceiver.dropped(FrameError.DESTINATION_TOO_SMALL));
        assertEquals(1, smallReceiver.droppedTotal());
        assertEquals(0, small.delivered.size());
    }

    @Test
    void aRunTheConsumerDoesNotKnowIsDropped() {
        byte[] payload = littleEndian(randomFloats(4, 10));
        feed(chunkedMessages(tensor(4).setRunId(RUN + 1), payload, 1 << 20).get(0));
        assertOnlyDropped(FrameError.UNKNOWN_RUN, 1);
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void aDtypeOtherThanFloat32IsUnsupported() {
        byte[] payload = littleEndian(randomFloats(4, 11));
        feed(chunkedMessages(tensor(4).setDtype(DType.DTYPE_UNSPECIFIED), payload, 1 << 20).get(0));
        feed(chunkedMessages(tensor(4).setDtypeValue(7), payload, 1 << 20).get(0));
        assertOnlyDropped(FrameError.UNSUPPORTED_DTYPE, 2);
    }

    @Test
    void aTensorWithoutDestinationIsUnexpected() {
        RecordingSink refusing = new RecordingSink(header -> null);
        TensorFrameReceiver refusingReceiver = new TensorFrameReceiver(run -> true, refusing);
        byte[] message = goodMessage(randomFloats(4, 12));
        refusingReceiver.onMessage(SESSION, new UnsafeBuffer(message), 0, message.length);
        assertEquals(1, refusingReceiver.dropped(FrameError.UNEXPECTED));
        assertEquals(1, refusingReceiver.droppedTotal());
        assertEquals(0, refusing.delivered.size());
    }

    @Test
    void aFailureFrameReachesTheSinkWithItsText() {
        TensorFrameHeader failure = TestFrames.failure("expert 2: BACKWARD_INPUT of module 1 without a forward").build();
        feed(message(failure, new byte[0]));
        assertEquals(List.of(failure), sink.failures);
        assertEquals(0, sink.delivered.size());
        assertEquals(0, receiver.droppedTotal());
    }

    @Test
    void aFailureFrameThatCarriesAnyPartOfATensorIsInvalid() {
        // each breaks exactly one rule
        feed(message(TestFrames.failure("with payload").build(), new byte[4]));
        feed(message(TestFrames.failure("with shape").addShape(0).build(), new byte[0]));
        feed(message(TestFrames.failure("with dtype").setDtype(DType.FLOAT32).build(), new byte[0]));
        feed(message(TestFrames.failure("in two chunks").setChunkCount(2).build(), new byte[0]));
        feed(message(TestFrames.failure("at an offset").setChunkOffset(4).build(), new byte[0]));
        feed(message(TestFrames.failure("with a crc").setPayloadCrc32C(7).build(), new byte[0]));
        assertOnlyDropped(FrameError.INVALID_FAILURE, 6);
        assertEquals(0, sink.failures.size());
    }

    @Test
    void aFailureFrameWithoutTextIsInvalid() {
        feed(message(TestFrames.failure("").build(), new byte[0]));
        assertOnlyDropped(FrameError.INVALID_FAILURE, 1);
        assertEquals(0, sink.failures.size());
    }

    @Test
    void aTensorFrameThatCarriesFailureTextIsInvalid() {
        byte[] payload = littleEndian(randomFloats(4, 31));
        for (Direction direction : List.of(Direction.FORWARD_INPUT, Direction.FORWARD_OUTPUT, Direction.BACKWARD_INPUT,
                Direction.BACKWARD_OUTPUT, Direction.GRADIENT, Direction.DIRECTION_UNSPECIFIED)) {
            feed(chunkedMessages(tensor(4).setDirection(direction).setFailure("not a failure frame"), payload, 1 << 20).get(0));
        }
        assertOnlyDropped(FrameError.INVALID_FAILURE, 6);
        assertEquals(0, sink.delivered.size());
        assertEquals(0, sink.failures.size());
    }

    @Test
    void aFailureFrameOfARunTheConsumerDoesNotKnowIsDropped() {
        feed(message(TestFrames.failure("old run").setRunId(RUN + 1).build(), new byte[0]));
        assertOnlyDropped(FrameError.UNKNOWN_RUN, 1);
        assertEquals(0, sink.failures.size());
    }

    @Test
    void aFailureFrameIsUnexpectedByAConsumerThatDoesNotAwaitFailures() {
        List<TensorFrameHeader> delivered = new ArrayList<>();
        TensorFrameReceiver tensorsOnly = new TensorFrameReceiver(run -> true, new TensorFrameReceiver.Sink() {
            @Override public ByteBuffer destination(TensorFrameHeader tensor) { return ByteBuffer.allocate(1 << 10); }
            @Override public void onTensor(TensorFrameHeader tensor, ByteBuffer destination) { delivered.add(tensor); }
        });
        byte[] message = message(TestFrames.failure("to an expert").build(), new byte[0]);
        tensorsOnly.onMessage(SESSION, new UnsafeBuffer(message), 0, message.length);
        assertEquals(1, tensorsOnly.dropped(FrameError.UNEXPECTED));
        assertEquals(1, tensorsOnly.droppedTotal());
        assertEquals(0, delivered.size());
    }

    @Test
    void aFailureFrameAbandonsTheTensorInProgressOnItsSession() {
        List<byte[]> chunks = chunkedMessages(tensor(30), littleEndian(randomFloats(30, 32)), 40);
        feed(chunks.get(0));
        feed(message(TestFrames.failure("gave up mid-tensor").build(), new byte[0]));
        feed(chunks.get(1)); // nothing in progress any more: expected chunk 0
        assertEquals(1, sink.failures.size());
        assertEquals(1, receiver.dropped(FrameError.INCOMPLETE));
        assertEquals(1, receiver.dropped(FrameError.OUT_OF_ORDER));
        assertEquals(2, receiver.droppedTotal());
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void chunksOfOneTensorAreAssembledInOrderIntoTheDestinationAtItsPosition() {
        byte[] payload = littleEndian(randomFloats(25, 13));
        ByteBuffer destination = ByteBuffer.allocate(200);
        destination.position(8);
        RecordingSink positioned = new RecordingSink(header -> destination);
        TensorFrameReceiver positionedReceiver = new TensorFrameReceiver(run -> true, positioned);
        for (byte[] chunk : chunkedMessages(tensor(5, 5), payload, 40)) {
            positionedReceiver.onMessage(SESSION, new UnsafeBuffer(chunk), 0, chunk.length);
        }
        assertEquals(1, positioned.delivered.size());
        assertEquals(8, destination.position(), "position is left where the consumer put it");
        assertArrayEquals(payload, Arrays.copyOfRange(destination.array(), 8, 108));
        assertEquals(0, positionedReceiver.droppedTotal());
    }

    @Test
    void aChunkAfterAGapIsOutOfOrderAndAbandonsTheTensor() {
        List<byte[]> chunks = chunkedMessages(tensor(30), littleEndian(randomFloats(30, 14)), 40);
        feed(chunks.get(0));
        feed(chunks.get(2));
        feed(chunks.get(1)); // nothing in progress any more: expected chunk 0
        assertEquals(2, receiver.dropped(FrameError.OUT_OF_ORDER));
        assertEquals(1, receiver.dropped(FrameError.INCOMPLETE));
        assertEquals(3, receiver.droppedTotal());
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void aNewChunkZeroSupersedesAnIncompleteTensor() {
        List<byte[]> abandoned = chunkedMessages(tensor(30), littleEndian(randomFloats(30, 15)), 40);
        byte[] next = littleEndian(randomFloats(30, 16));
        feed(abandoned.get(0));
        feed(abandoned.get(1));
        for (byte[] chunk : chunkedMessages(tensor(30).setStep(4), next, 40)) {
            feed(chunk);
        }
        assertOnlyDropped(FrameError.INCOMPLETE, 1);
        assertEquals(1, sink.delivered.size());
        assertEquals(4, sink.delivered.get(0).header().getStep());
        assertArrayEquals(next, sink.delivered.get(0).payload());
    }

    @Test
    void aChunkOfAnotherTensorInTheMiddleIsOutOfOrder() {
        byte[] payload = littleEndian(randomFloats(30, 17));
        List<byte[]> first = chunkedMessages(tensor(30), payload, 40);
        List<byte[]> other = chunkedMessages(tensor(30).setExpert(3), payload, 40);
        feed(first.get(0));
        feed(other.get(1));
        assertEquals(1, receiver.dropped(FrameError.OUT_OF_ORDER));
        assertEquals(1, receiver.dropped(FrameError.INCOMPLETE));
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void aChunkAtTheWrongOffsetIsAShapeMismatch() {
        byte[] payload = littleEndian(randomFloats(30, 18));
        List<byte[]> chunks = chunkedMessages(tensor(30), payload, 40);
        byte[] chunk1 = Arrays.copyOfRange(payload, 40, 80);
        TensorFrameHeader shifted = tensor(30).setChunkIndex(1).setChunkCount(3).setChunkOffset(44)
                .setPayloadCrc32C(TestFrames.crc32c(chunk1, 0, 40)).build();
        feed(chunks.get(0));
        feed(message(shifted, chunk1));
        assertEquals(1, receiver.dropped(FrameError.SHAPE_MISMATCH));
        assertEquals(1, receiver.dropped(FrameError.INCOMPLETE));
        assertEquals(0, sink.delivered.size());
    }

    @Test
    void chunksFromTwoSessionsInterleavedAreAssembledPerSession() {
        byte[] a = littleEndian(randomFloats(30, 19));
        byte[] b = littleEndian(randomFloats(30, 20));
        List<byte[]> fromA = chunkedMessages(tensor(30).setSource(0), a, 40);
        List<byte[]> fromB = chunkedMessages(tensor(30).setSource(1), b, 40);
        for (int i = 0; i < fromA.size(); i++) {
            feed(1, fromA.get(i));
            feed(2, fromB.get(i));
        }
        assertEquals(0, receiver.droppedTotal());
        assertEquals(2, sink.delivered.size());
        assertArrayEquals(a, sink.delivered.get(0).payload());
        assertArrayEquals(b, sink.delivered.get(1).payload());
    }
}
