package dev.moelora.router;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.proto.frame.ChannelSettings;
import dev.moelora.proto.frame.DataPlane;
import dev.moelora.proto.frame.FrameError;
import dev.moelora.proto.frame.TensorFrameReceiver;
import dev.moelora.proto.frame.TensorFrameSender;
import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import dev.moelora.router.RouterDataPlane.NotAwaited;
import io.aeron.Subscription;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A router's dispatch over real Aeron IPC against a scripted expert node (a thread of this test):
 * answers land in the rows they belong to; stale, misaddressed, duplicate and misshapen answers,
 * each with a payload unlike the real answer's, are dropped and counted by cause; an expert's
 * FAILURE frame fails the exchange at once with the expert's message; an expert that never
 * answers fails it after the timeout, naming it. The gradient all-gather between routers drops by
 * the same causes. Whatever the scripted node's thread throws fails the test.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RouterDataPlaneTest {
    static final long RUN = 3;
    static final String IPC = ChannelSettings.defaults().ipc();
    static final int ROUTER_STREAM = 2001, NODE_STREAM = 1001, OTHER_ROUTER_STREAM = 2002;
    static final int IN_COLS = 3, OUT_COLS = 2;
    static final int[] BOTH = {0, 2, 5};          // rows 0..1 to expert 0, rows 2..4 to expert 1
    static final Duration FRAME_TIMEOUT = Duration.ofSeconds(30);

    DataPlane media;
    RouterDataPlane router;
    ScriptedNode node;

    @BeforeEach
    void start() {
        media = DataPlane.launchEmbedded();
        node = new ScriptedNode(media);
    }

    @AfterEach
    void stop() {
        try {
            node.close(); // rethrows what the node's thread threw
        } finally {
            if (router != null) router.close();
            media.close();
        }
    }

    /** Router 0 of {@code routers}, with both experts on the scripted node. */
    private void startRouter(Duration timeout, int routers) {
        router = new RouterDataPlane(media, IPC, ROUTER_STREAM, timeout);
        RouterDataPlane.Endpoint expertNode = new RouterDataPlane.Endpoint(IPC, NODE_STREAM);
        List<RouterDataPlane.Endpoint> endpoints = new ArrayList<>(List.of(new RouterDataPlane.Endpoint(IPC, ROUTER_STREAM)));
        for (int r = 1; r < routers; r++) endpoints.add(new RouterDataPlane.Endpoint(IPC, OTHER_ROUTER_STREAM + r - 1));
        router.startRun(RUN, 0, List.of(expertNode, expertNode), endpoints);
    }

    /** (5, IN_COLS) rows whose first column is 1..5. */
    private static INDArray rows() {
        INDArray xs = Nd4j.create(DataType.FLOAT, 5, IN_COLS);
        for (int i = 0; i < 5; i++) xs.putScalar(i, 0, i + 1);
        return xs;
    }

    /** (5, OUT_COLS) filled with NaN, so rows no answer reached show. */
    private static INDArray unanswered() {
        INDArray h = Nd4j.create(DataType.FLOAT, 5, OUT_COLS);
        h.assign(Float.NaN);
        return h;
    }

    /** What the real answers put in {@code out}: {@link Dispatch#realAnswer} of each addressed expert, in its rows. */
    private static float[] realAnswers(INDArray xs, int[] offset) {
        float[] out = new float[(int) xs.size(0) * OUT_COLS];
        Arrays.fill(out, Float.NaN);
        for (int e = 0; e + 1 < offset.length; e++) {
            for (int i = offset[e]; i < offset[e + 1]; i++) {
                float x = xs.getFloat(i, 0);
                out[i * OUT_COLS] = (e + 1) * x;
                out[i * OUT_COLS + 1] = (e + 1) * x + 0.5f;
            }
        }
        return out;
    }

    private void forward(long step, INDArray xs, int[] offset, INDArray h) {
        router.exchange(Direction.FORWARD_INPUT, step, 0, 0, 0, "layer.0.q", xs, offset, h);
    }

    /** Every drop count of the router and its receiver: exactly {@code expected} for the router's causes, and nothing malformed. */
    private void assertDropped(Map<NotAwaited, Long> expected) {
        long total = 0;
        for (NotAwaited cause : NotAwaited.values()) {
            long want = expected.getOrDefault(cause, 0L);
            assertEquals(want, router.dropped(cause), cause.name());
            total += want;
        }
        assertEquals(total, router.receiver().dropped(FrameError.UNEXPECTED), "the receiver counts each as unexpected");
        assertEquals(total, router.receiver().droppedTotal(), "dropped for other reasons: " + router.droppedSummary());
    }

    private static Map<NotAwaited, Long> only(NotAwaited cause, long count) {
        Map<NotAwaited, Long> m = new EnumMap<>(NotAwaited.class);
        m.put(cause, count);
        return m;
    }

    @Test
    void eachExpertsAnswerLandsInItsOwnRows() {
        startRouter(FRAME_TIMEOUT, 1);
        node.expect(2, (dispatches, out) -> {
            for (int i = dispatches.size() - 1; i >= 0; i--) out.send(dispatches.get(i).answer(), dispatches.get(i).realAnswer());
        });
        INDArray xs = rows(), h = unanswered();
        forward(4, xs, BOTH, h);
        assertArrayEquals(new float[]{1, 1.5f, 2, 2.5f, 6, 6.5f, 8, 8.5f, 10, 10.5f}, h.data().asFloat());
        assertArrayEquals(realAnswers(xs, BOTH), h.data().asFloat());
        assertDropped(Map.of());
    }

    @Test
    void answersForAnotherExchangeAreDroppedAsStale() {
        startRouter(FRAME_TIMEOUT, 1);
        node.expect(2, (dispatches, out) -> {
            Dispatch d = dispatches.get(0);
            out.send(d.answer().setStep(d.header().getStep() - 1), d.bogus(1));
            out.send(d.answer().setMicroBatch(d.header().getMicroBatch() + 1), d.bogus(2));
            out.send(d.answer().setModule(d.header().getModule() + 1), d.bogus(3));
            out.send(d.answer().setDirection(Direction.BACKWARD_OUTPUT), d.bogus(4)); // the other direction's answer
            out.sendFailure(d.answer().setStep(d.header().getStep() - 1), "a failure of the step before");
            for (Dispatch real : dispatches) out.send(real.answer(), real.realAnswer());
        });
        INDArray xs = rows(), h = unanswered();
        forward(4, xs, BOTH, h);
        assertArrayEquals(realAnswers(xs, BOTH), h.data().asFloat());
        assertDropped(only(NotAwaited.STALE, 5));
    }

    @Test
    void answersFromExpertsTheExchangeDidNotAddressAreDroppedAsMisaddressed() {
        startRouter(FRAME_TIMEOUT, 1);
        int[] expertZeroOnly = {0, 5, 5};
        node.expect(1, (dispatches, out) -> {
            Dispatch d = dispatches.get(0);
            out.send(d.answer().setExpert(1).setSource(1), d.bogus(1));  // in the run, sent no rows
            out.send(d.answer().setExpert(7).setSource(7), d.bogus(2));  // not in the run
            out.send(d.answer().setDirection(Direction.FORWARD_INPUT), d.bogus(3)); // a dispatch, not an answer
            out.send(d.answer(), d.realAnswer());
        });
        INDArray xs = rows(), h = unanswered();
        forward(4, xs, expertZeroOnly, h);
        assertArrayEquals(realAnswers(xs, expertZeroOnly), h.data().asFloat());
        assertDropped(only(NotAwaited.MISADDRESSED, 3));
    }

    @Test
    void aSecondAnswerFromTheSameExpertIsDroppedAsDuplicate() {
        startRouter(FRAME_TIMEOUT, 1);
        node.expect(2, (dispatches, out) -> {
            Dispatch first = dispatches.get(0), second = dispatches.get(1);
            out.send(first.answer(), first.realAnswer());
            out.send(first.answer(), first.bogus(1));
            out.sendFailure(first.answer(), "a failure after the answer");
            out.send(second.answer(), second.realAnswer());
        });
        INDArray xs = rows(), h = unanswered();
        forward(4, xs, BOTH, h);
        assertArrayEquals(realAnswers(xs, BOTH), h.data().asFloat());
        assertDropped(only(NotAwaited.DUPLICATE, 2));
    }

    @Test
    void answersOfAnotherShapeAreDroppedAsMisshapen() {
        startRouter(FRAME_TIMEOUT, 1);
        node.expect(2, (dispatches, out) -> {
            Dispatch d = dispatches.get(0);
            long n = d.rows();
            // each fits the expert's rows, so it would land there if it were accepted
            out.send(d.answer().clearShape().addShape(n).addShape(OUT_COLS - 1), d.bogus(1, n * (OUT_COLS - 1)));
            out.send(d.answer().clearShape().addShape(n - 1).addShape(OUT_COLS), d.bogus(2, (n - 1) * OUT_COLS));
            out.send(d.answer().clearShape().addShape(n * OUT_COLS), d.bogus(3));
            for (Dispatch real : dispatches) out.send(real.answer(), real.realAnswer());
        });
        INDArray xs = rows(), h = unanswered();
        forward(4, xs, BOTH, h);
        assertArrayEquals(realAnswers(xs, BOTH), h.data().asFloat());
        assertDropped(only(NotAwaited.MISSHAPEN, 3));
    }

    @Test
    void aSilentExpertFailsTheExchangeAfterTheTimeoutByName() {
        startRouter(Duration.ofMillis(1500), 1);
        node.expect(2, (dispatches, out) -> {
            Dispatch zero = dispatches.get(0);
            out.send(zero.answer().setStep(zero.header().getStep() - 1), zero.bogus(1));
            out.send(zero.answer(), zero.realAnswer());
        });
        INDArray xs = rows(), h = unanswered();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> forward(5, xs, BOTH, h));
        assertContains(e.getMessage(), "router 0, step 5, micro-batch 0, module layer.0.q: no FORWARD_OUTPUT within 1 s from [expert 1 at "
                + IPC + "]", "frames dropped so far: {STALE=1}");
        assertArrayEquals(Arrays.copyOf(realAnswers(xs, BOTH), 2 * OUT_COLS), Arrays.copyOf(h.data().asFloat(), 2 * OUT_COLS),
                "expert 0's answer still landed");
    }

    @Test
    void anExpertsFailureFrameFailsTheExchangeAtOnceWithItsMessage() {
        startRouter(FRAME_TIMEOUT, 1);
        String text = "expert 1 could not compute the BACKWARD_OUTPUT of module layer.0.q (layer 0, step 4, micro-batch 1): "
                + "IllegalStateException: a backward of 3 rows, but no forward ran in this slot since its last backward";
        node.expect(2, (dispatches, out) -> {
            out.send(dispatches.get(0).answer(), dispatches.get(0).realAnswer());
            out.sendFailure(dispatches.get(1).answer(), text);
        });
        INDArray dh = rows(), dx = unanswered();
        long start = System.nanoTime();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> router.exchange(Direction.BACKWARD_INPUT, 4, 1, 0, 0, "layer.0.q", dh, BOTH, dx));
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertTrue(took.compareTo(FRAME_TIMEOUT.dividedBy(5)) < 0, "failed only after " + took + " (frame timeout " + FRAME_TIMEOUT + ")");
        assertEquals("router 0, step 4, micro-batch 1, module layer.0.q: expert 1 at " + IPC + " stream " + NODE_STREAM
                + " failed instead of sending its BACKWARD_OUTPUT: " + text, e.getMessage());
        assertDropped(Map.of());

        // nothing of the failed exchange is left behind: the next one is answered as usual
        node.expect(2, (dispatches, out) -> {
            for (Dispatch d : dispatches) out.send(d.answer(), d.realAnswer());
        });
        INDArray xs = rows(), h = unanswered();
        forward(5, xs, BOTH, h);
        assertArrayEquals(realAnswers(xs, BOTH), h.data().asFloat());
        assertDropped(Map.of());
    }

    @Test
    void gradientsFromAnotherRouterLandInTheirSlotsAndTheRestAreDroppedByCause() {
        startRouter(FRAME_TIMEOUT, 2);
        long step = 6;
        INDArray[][] slots = {{Nd4j.zeros(DataType.FLOAT, 2, 3), Nd4j.zeros(DataType.FLOAT, 4)},
                {Nd4j.zeros(DataType.FLOAT, 2, 3), Nd4j.zeros(DataType.FLOAT, 4)}};
        router.beginStep(step, slots, new boolean[]{true, false}); // this router computed micro-batch 0, router 1 micro-batch 1
        TensorFrameSender fromRouterOne = new TensorFrameSender(media.publication(IPC, ROUTER_STREAM), FRAME_TIMEOUT);
        float[] first = {1, 2, 3, 4, 5, 6}, second = {7, 8, 9, 10};
        sendGradient(fromRouterOne, step - 1, 1, 0, new long[]{2, 3}, new float[]{-1, -1, -1, -1, -1, -1}); // stale
        sendGradient(fromRouterOne, step, 0, 0, new long[]{2, 3}, new float[]{-2, -2, -2, -2, -2, -2});     // its own micro-batch
        sendGradient(fromRouterOne, step, 1, 2, new long[]{4}, new float[]{-3, -3, -3, -3});                // no tensor 2
        sendGradient(fromRouterOne, step, 1, 1, new long[]{3}, new float[]{-4, -4, -4});                    // misshapen
        sendGradient(fromRouterOne, step, 1, 0, new long[]{2, 3}, first);
        sendGradient(fromRouterOne, step, 1, 0, new long[]{2, 3}, new float[]{-5, -5, -5, -5, -5, -5});     // duplicate
        sendGradient(fromRouterOne, step, 1, 1, new long[]{4}, second);
        router.awaitGradients(step, 2);
        assertArrayEquals(first, slots[1][0].data().asFloat());
        assertArrayEquals(second, slots[1][1].data().asFloat());
        assertArrayEquals(new float[6], slots[0][0].data().asFloat(), "this router's own slot is untouched");
        Map<NotAwaited, Long> expected = new EnumMap<>(NotAwaited.class);
        expected.put(NotAwaited.STALE, 1L);
        expected.put(NotAwaited.MISADDRESSED, 2L);
        expected.put(NotAwaited.MISSHAPEN, 1L);
        expected.put(NotAwaited.DUPLICATE, 1L);
        assertDropped(expected);
    }

    private static void sendGradient(TensorFrameSender sender, long step, int micro, int tensor, long[] shape, float[] values) {
        TensorFrameHeader.Builder h = TensorFrameHeader.newBuilder().setRunId(RUN).setStep(step).setMicroBatch(micro).setLayer(-1)
                .setModule(tensor).setExpert(-1).setSource(1).setDirection(Direction.GRADIENT).setDtype(DType.FLOAT32);
        for (long d : shape) h.addShape(d);
        ByteBuffer payload = littleEndian(values);
        sender.send(h.build(), payload, 0, payload.capacity());
    }

    private static ByteBuffer littleEndian(float[] values) {
        ByteBuffer b = ByteBuffer.allocateDirect(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return b.clear();
    }

    private static void assertContains(String text, String... parts) {
        for (String part : parts) assertTrue(text.contains(part), () -> "'" + part + "' missing from: " + text);
    }

    /** A dispatch as the scripted node received it: the header and the rows. */
    record Dispatch(TensorFrameHeader header, float[] values) {
        long rows() {
            return header.getShape(0);
        }

        /** The header of this dispatch's answer: (rows, OUT_COLS) in the answering direction, from the expert. */
        TensorFrameHeader.Builder answer() {
            return header.toBuilder()
                    .setDirection(header.getDirection() == Direction.FORWARD_INPUT ? Direction.FORWARD_OUTPUT : Direction.BACKWARD_OUTPUT)
                    .setSource(header.getExpert()).clearShape().addShape(rows()).addShape(OUT_COLS)
                    .clearChunkIndex().clearChunkCount().clearChunkOffset().clearPayloadCrc32C();
        }

        /** Row i is (e + 1) x, (e + 1) x + 0.5 for x the row's first input value: distinct per expert, row and column. */
        float[] realAnswer() {
            int e = header.getExpert();
            long inCols = header.getShape(1);
            float[] out = new float[(int) rows() * OUT_COLS];
            for (int i = 0; i < rows(); i++) {
                float x = values[(int) (i * inCols)];
                out[i * OUT_COLS] = (e + 1) * x;
                out[i * OUT_COLS + 1] = (e + 1) * x + 0.5f;
            }
            return out;
        }

        /** An answer-sized payload unlike any real answer (all negative, below -100) and unlike bogus(k') for k' != k. */
        float[] bogus(int k) {
            return bogus(k, rows() * OUT_COLS);
        }

        float[] bogus(int k, long elements) {
            float[] out = new float[(int) elements];
            for (int i = 0; i < out.length; i++) out[i] = -100f * k - i - 1;
            return out;
        }
    }

    /** What the scripted node sends once it has every dispatch of an exchange. */
    @FunctionalInterface
    interface Script {
        void play(List<Dispatch> dispatches, ScriptedNode out);
    }

    /**
     * This test's expert node: a thread that polls the node's stream, collects each exchange's
     * dispatches (as many as {@link #expect} says) and plays the script on them, replying on one
     * publication, so its frames reach the router in the order the script sends them. What the
     * thread throws is kept and rethrown by {@link #close}.
     */
    static final class ScriptedNode implements AutoCloseable {
        private final Subscription in;
        private final TensorFrameSender reply;
        private final TensorFrameReceiver receiver;
        private final ByteBuffer rows = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        private final ByteBuffer payload = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        private final List<Dispatch> received = new ArrayList<>();
        private final CompletableFuture<Void> finished = new CompletableFuture<>();
        private volatile boolean running = true;
        private volatile Script script;
        private volatile int expected;

        ScriptedNode(DataPlane media) {
            in = media.subscription(IPC, NODE_STREAM);
            reply = new TensorFrameSender(media.publication(IPC, ROUTER_STREAM), Duration.ofSeconds(5));
            receiver = new TensorFrameReceiver(run -> run == RUN, new TensorFrameReceiver.Sink() {
                @Override public ByteBuffer destination(TensorFrameHeader h) { return rows.clear(); }
                @Override public void onTensor(TensorFrameHeader h, ByteBuffer b) { onDispatch(h); }
            });
            Thread thread = new Thread(this::run, "scripted-expert-node");
            thread.setDaemon(true);
            thread.start();
        }

        /** The next exchange sends {@code dispatches} dispatches; once all are here, {@code script} plays. */
        void expect(int dispatches, Script script) {
            this.script = script;
            this.expected = dispatches;
        }

        void send(TensorFrameHeader.Builder header, float[] values) {
            payload.clear();
            for (float v : values) payload.putFloat(v);
            reply.send(header.build(), payload, 0, values.length * Float.BYTES);
        }

        void sendFailure(TensorFrameHeader.Builder header, String failure) {
            reply.sendFailure(header.build(), failure);
        }

        private void onDispatch(TensorFrameHeader h) {
            float[] values = new float[(int) (h.getShape(0) * h.getShape(1))];
            rows.asFloatBuffer().get(values);
            received.add(new Dispatch(h, values));
            if (received.size() == expected) {
                List<Dispatch> all = List.copyOf(received);
                received.clear();
                script.play(all, this);
            }
        }

        private void run() {
            try {
                while (running) if (in.poll(receiver, 16) == 0) Thread.onSpinWait();
                finished.complete(null);
            } catch (Throwable e) {
                finished.completeExceptionally(e);
            }
        }

        /** Stops the thread; rethrows what it threw. */
        @Override
        public void close() {
            running = false;
            try {
                finished.get(10, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                throw new AssertionError("the scripted expert node failed", e.getCause());
            } catch (TimeoutException e) {
                throw new AssertionError("the scripted expert node did not stop within 10 s", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted while stopping the scripted expert node", e);
            }
        }
    }
}
