package dev.moelora.router;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.proto.frame.ChannelSettings;
import dev.moelora.proto.frame.DataPlane;
import dev.moelora.proto.frame.TensorFrameReceiver;
import dev.moelora.proto.frame.TensorFrameSender;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import io.aeron.FragmentAssembler;
import io.aeron.Subscription;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A router's dispatch over real Aeron IPC against a scripted expert node (this test): answers land
 * in the rows they belong to; stale, misshapen or duplicate answers are dropped and counted; an
 * expert that never answers fails the exchange after the timeout with a message naming it.
 */
class RouterDataPlaneTest {
    static final long RUN = 3;
    static final String IPC = ChannelSettings.defaults().ipc();

    DataPlane media;
    RouterDataPlane router;
    Thread expertNode;
    final AtomicBoolean running = new AtomicBoolean(true);
    volatile boolean silentExpertOne;

    @BeforeEach
    void start() {
        media = DataPlane.launchEmbedded();
        router = new RouterDataPlane(media, IPC, 2001, Duration.ofMillis(1500));
        RouterDataPlane.Endpoint node = new RouterDataPlane.Endpoint(IPC, 1001);
        router.startRun(RUN, 0, List.of(node, node), List.of(new RouterDataPlane.Endpoint(IPC, 2001)));
        Subscription in = media.subscription(IPC, 1001);
        TensorFrameSender reply = new TensorFrameSender(media.publication(IPC, 2001), Duration.ofSeconds(5));
        ByteBuffer rows = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        TensorFrameReceiver receiver = new TensorFrameReceiver(run -> run == RUN, new TensorFrameReceiver.Sink() {
            @Override public ByteBuffer destination(TensorFrameHeader h) { return rows.clear(); }
            @Override public void onTensor(TensorFrameHeader h, ByteBuffer b) {
                if (silentExpertOne && h.getExpert() == 1) return;
                long n = h.getShape(0), cols = 2;
                // answer: row i of expert e is (e + 1) * (first input value of the row), in both columns
                out.clear();
                for (long i = 0; i < n; i++) {
                    float v = (h.getExpert() + 1) * rows.getFloat((int) (i * h.getShape(1) * 4));
                    out.putFloat(v).putFloat(v);
                }
                TensorFrameHeader.Builder a = h.toBuilder().clearShape().addShape(n).addShape(cols)
                        .setDirection(Direction.FORWARD_OUTPUT).clearChunkIndex().clearChunkCount().clearChunkOffset().clearPayloadCrc32C();
                reply.send(a.clone().setStep(h.getStep() - 1).build(), out, 0, (int) (n * cols * 4));      // stale step
                reply.send(a.clone().clearShape().addShape(n).addShape(cols + 1).build(), out, 0, (int) (n * (cols + 1) * 4)); // wrong shape
                reply.send(a.build(), out, 0, (int) (n * cols * 4));
                reply.send(a.build(), out, 0, (int) (n * cols * 4));                                        // duplicate
            }
        });
        FragmentAssembler assembler = new FragmentAssembler(receiver);
        expertNode = new Thread(() -> {
            while (running.get()) if (in.poll(assembler, 16) == 0) Thread.onSpinWait();
        }, "scripted-expert-node");
        expertNode.start();
    }

    @AfterEach
    void stop() throws Exception {
        running.set(false);
        expertNode.join(5_000);
        router.close();
        media.close();
    }

    @Test
    void answersLandInTheirRowsAndASilentExpertFailsTheExchangeByName() {
        INDArray xs = Nd4j.create(DataType.FLOAT, 5, 3);               // (NK, C): rows 0..1 expert 0, rows 2..4 expert 1
        for (int i = 0; i < 5; i++) xs.putScalar(i, 0, i + 1);
        INDArray h = Nd4j.create(DataType.FLOAT, 5, 2);
        router.exchange(Direction.FORWARD_INPUT, 4, 0, 0, 0, "layer.0.q", xs, new int[]{0, 2, 5}, h);
        assertArrayEquals(new float[]{1, 1, 2, 2, 6, 6, 8, 8, 10, 10}, h.data().asFloat());

        silentExpertOne = true;
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> router.exchange(Direction.FORWARD_INPUT, 5, 0, 0, 0, "layer.0.q", xs, new int[]{0, 2, 5}, h));
        assertTrue(e.getMessage().contains("expert 1 at " + IPC), e.getMessage());
        assertTrue(e.getMessage().contains("module layer.0.q"), e.getMessage());
        assertTrue(e.getMessage().contains("NOT_AWAITED"), "stale, misshapen and duplicate answers are counted: " + e.getMessage());
        assertEquals(1.0f, h.getFloat(0, 0), "expert 0's answer of step 5 still landed");
    }
}
