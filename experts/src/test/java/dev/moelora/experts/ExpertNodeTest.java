package dev.moelora.experts;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.moelora.model.moelora.LowRankExpert;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import dev.moelora.proto.control.ApplyUpdate;
import dev.moelora.proto.control.CoordinatorEvent;
import dev.moelora.proto.control.DataEndpoint;
import dev.moelora.proto.control.ExpertPlacement;
import dev.moelora.proto.control.ExpertRequest;
import dev.moelora.proto.control.InitExperts;
import dev.moelora.proto.control.ModuleShape;
import dev.moelora.proto.control.ParameterNorm;
import dev.moelora.proto.control.ReduceGradients;
import dev.moelora.proto.frame.ChannelSettings;
import dev.moelora.proto.frame.DataPlane;
import dev.moelora.proto.frame.FrameError;
import dev.moelora.proto.frame.TensorFrameReceiver;
import dev.moelora.proto.frame.TensorFrameSender;
import dev.moelora.proto.wire.DType;
import dev.moelora.proto.wire.Direction;
import dev.moelora.proto.wire.TensorFrameHeader;
import io.aeron.Subscription;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * An expert node over real Aeron IPC, with this test playing the router: its experts answer
 * dispatches with exactly the single-process math (LowRankExpert, MicroBatchGradients, AdamW on
 * the same initial tensors), and malformed or unexpected frames are counted and dropped without
 * a reply while good ones are still served. An expert that cannot compute answers with a FAILURE
 * frame at once; one that throws on a step command fails the node's request at once.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ExpertNodeTest {
    static final long RUN = 7;
    static final int C = 4, D = 3, ROWS = 5;
    /** How long this test, as the router, waits for an answer (runtime.frame-timeout plays this part in a run). */
    static final Duration FRAME_TIMEOUT = Duration.ofSeconds(30);
    /** How long the node waits for its experts' answers to a request (runtime.timeout in a run). */
    static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(30);
    static final MoeLoraConfig CONFIG = new MoeLoraConfig(2, 1, 2, 4, 0.0, List.of("m"), 0.01, 0.1, 0.1, 4);
    static final List<MoeLora.ModuleShape> MODULES = List.of(new MoeLora.ModuleShape("layer.0.m", C, D));
    static final long SEED = 11;

    DataPlane media;
    ActorSystem<Void> system;
    ExpertDataPlane experts;
    Subscription replies;
    TensorFrameReceiver receiver;
    TensorFrameSender toExperts;
    ByteBuffer answer = ByteBuffer.allocateDirect(ROWS * 8 * 4).order(ByteOrder.LITTLE_ENDIAN);
    TensorFrameHeader answered;     // the last answer or FAILURE frame
    int received;                   // answers and FAILURE frames received so far
    final BlockingQueue<CoordinatorEvent> events = new LinkedBlockingQueue<>();
    ActorRef<ExpertRequest> node;
    String replyTo;

    @BeforeEach
    void start() {
        media = DataPlane.launchEmbedded();
        String ipc = ChannelSettings.defaults().ipc();
        system = ActorSystem.create(Behaviors.empty(), "expert-node-test", ConfigFactory.parseString(
                "moelora.expert-dispatcher { type = PinnedDispatcher, executor = thread-pool-executor }\n"
                        + "pekko.actor.allow-java-serialization = off").withFallback(ConfigFactory.load()));
        experts = new ExpertDataPlane(media, ipc, 1001, 2, Duration.ofSeconds(5));
        ActorRef<ExpertNode.Command> n = system.systemActorOf(ExpertNode.create("test-node", experts,
                text -> new ExpertNode.Settings(CONFIG, SEED, 0.0), REQUEST_TIMEOUT), "experts", org.apache.pekko.actor.typed.Props.empty());
        node = system.systemActorOf(ExpertNode.requests(n), "requests", org.apache.pekko.actor.typed.Props.empty());
        ActorRef<CoordinatorEvent> inbox = system.systemActorOf(Behaviors.receiveMessage(e -> {
            events.add(e);
            return Behaviors.same();
        }), "inbox", org.apache.pekko.actor.typed.Props.empty());
        replyTo = ActorRefResolver.get(system).toSerializationFormat(inbox);
        replies = media.subscription(ipc, 2001);
        receiver = new TensorFrameReceiver(run -> run == RUN, new TensorFrameReceiver.Sink() {
            @Override public ByteBuffer destination(TensorFrameHeader h) { return answer.clear(); }
            @Override public void onTensor(TensorFrameHeader h, ByteBuffer b) { answered = h; received++; }
            @Override public boolean onFailure(TensorFrameHeader h) { answered = h; received++; return true; }
        });
        toExperts = new TensorFrameSender(media.publication(ipc, 1001), Duration.ofSeconds(5));
    }

    @AfterEach
    void stop() throws Exception {
        system.terminate();
        system.getWhenTerminated().toCompletableFuture().get(20, TimeUnit.SECONDS);
        experts.close();
        media.close();
    }

    /** The node's answer to a request, which must not be a failure. */
    private CoordinatorEvent request(ExpertRequest.Builder r) throws InterruptedException {
        CoordinatorEvent e = answerTo(r);
        assertTrue(!e.hasFailed(), e.toString());
        return e;
    }

    /** The node's answer to a request, whatever it is, within twice the node's own request timeout. */
    private CoordinatorEvent answerTo(ExpertRequest.Builder r) throws InterruptedException {
        node.tell(r.setReplyTo(replyTo).build());
        CoordinatorEvent e = events.poll(2 * REQUEST_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        assertNotNull(e, "no answer from the expert node");
        return e;
    }

    private CoordinatorEvent init(int... hosted) throws InterruptedException {
        InitExperts.Builder init = InitExperts.newBuilder().setRunId(RUN).setConfig("unused by this settings reader").setMicroBatches(1)
                .addModules(ModuleShape.newBuilder().setName(MODULES.get(0).name()).setDIn(C).setDOut(D))
                .addRouters(DataEndpoint.newBuilder().setChannel(ChannelSettings.defaults().ipc()).setStream(2001));
        for (int e : hosted) {
            init.addHosted(ExpertPlacement.newBuilder().setExpert(e).setNode("test-node").setDevice(e));
        }
        return answerTo(ExpertRequest.newBuilder().setInit(init));
    }

    /** Sends a dispatch and returns the reply (an answer or a FAILURE frame), or null when none came within the time. */
    private TensorFrameHeader exchange(long run, int expert, Direction direction, INDArray rows, long cols, Duration wait) {
        answered = null;
        ByteBuffer src = ByteBuffer.allocateDirect((int) rows.length() * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : rows.data().asFloat()) src.putFloat(f);
        TensorFrameHeader h = TensorFrameHeader.newBuilder().setRunId(run).setStep(0).setMicroBatch(0).setLayer(0).setModule(0)
                .setExpert(expert).setSource(0).setDirection(direction).setDtype(DType.FLOAT32).addShape(rows.size(0)).addShape(cols).build();
        toExperts.send(h, src, 0, src.capacity());
        long deadline = System.nanoTime() + wait.toNanos();
        while (answered == null && System.nanoTime() < deadline) replies.poll(receiver, 16);
        return answered;
    }

    /** Sends a dispatch and returns the answer's floats, or null when nothing came within {@code waitMillis}; a FAILURE frame fails the test. */
    private float[] dispatch(long run, int expert, Direction direction, INDArray rows, long cols, long waitMillis) {
        TensorFrameHeader reply = exchange(run, expert, direction, rows, cols, Duration.ofMillis(waitMillis));
        if (reply == null) return null;
        assertTrue(reply.getDirection() != Direction.FAILURE, () -> "expert failed: " + reply.getFailure());
        float[] out = new float[(int) (reply.getShape(0) * reply.getShape(1))];
        answer.position(0).asFloatBuffer().get(out);
        return out;
    }

    /** Sends a dispatch the expert cannot compute; returns its FAILURE frame, which must come well before {@link #FRAME_TIMEOUT}. */
    private TensorFrameHeader dispatchFailing(int expert, Direction direction, INDArray rows, long cols) {
        long start = System.nanoTime();
        TensorFrameHeader reply = exchange(RUN, expert, direction, rows, cols, FRAME_TIMEOUT);
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertNotNull(reply, "no reply within " + FRAME_TIMEOUT);
        assertEquals(Direction.FAILURE, reply.getDirection(), reply.toString());
        assertTrue(took.compareTo(FRAME_TIMEOUT.dividedBy(5)) < 0, "the failure came only after " + took);
        return reply;
    }

    @Test
    void expertsAnswerWithTheSingleProcessMathAndDropWhatTheyCannotServe() throws Exception {
        CoordinatorEvent ready = init(0, 1);
        assertTrue(!ready.hasFailed(), ready.toString());
        assertEquals(List.of(0, 1), ready.getExpertsReady().getExpertsList());

        // the reference: expert 1's tensors as the single-process module draws them, and its optimizer
        MoeLora.ModuleInit ref = MoeLora.initialise(MODULES, CONFIG, SEED, DataType.FLOAT).get(0);
        Parameter a = new Parameter("a", ref.a()[1].dup()), b = new Parameter("b", ref.b()[1].dup());
        AdamW adam = AdamW.withDefaults(List.of(a, b), 0.0);
        SplittableRandom random = new SplittableRandom(3);
        INDArray x = rand(random, ROWS, C), dh = rand(random, ROWS, D);
        INDArray h1 = Nd4j.create(DataType.FLOAT, ROWS, CONFIG.expertRank()), h = Nd4j.create(DataType.FLOAT, ROWS, D);
        INDArray dh1 = Nd4j.create(DataType.FLOAT, ROWS, CONFIG.expertRank()), dx = Nd4j.create(DataType.FLOAT, ROWS, C);

        LowRankExpert.forward(x, a.value(), b.value(), CONFIG.scale(), h1, h);
        assertArrayEquals(h.data().asFloat(), dispatch(RUN, 1, Direction.FORWARD_INPUT, x, C, 10_000));
        LowRankExpert.backward(dh, x.dup(), h1, a.value(), b.value(), CONFIG.scale(), a.grad(), b.grad(), dh1, dx);
        assertArrayEquals(dx.data().asFloat(), dispatch(RUN, 1, Direction.BACKWARD_INPUT, dh, D, 10_000));

        CoordinatorEvent reduced = request(ExpertRequest.newBuilder().setReduce(ReduceGradients.newBuilder().setStep(0).setMicroBatches(1)));
        List<ParameterNorm> norms = reduced.getReduced().getNormsList();
        assertEquals(4, norms.size(), "A and B of experts 0 and 1");
        assertEquals(MoeLora.aName("layer.0.m", 1), norms.get(2).getParameter());
        assertEquals(AdamW.norm(a), norms.get(2).getNorm(), 0.0);
        assertEquals(AdamW.norm(b), norms.get(3).getNorm(), 0.0);
        assertTrue(norms.get(3).getNorm() > 0, "dB is not zero");
        assertEquals(0.0, norms.get(0).getNorm(), 0.0, "expert 0 got no rows");

        request(ExpertRequest.newBuilder().setApply(ApplyUpdate.newBuilder().setStep(0).setLr(0.05).setClipFactor(0.5)));
        a.grad().muli(0.5);
        b.grad().muli(0.5);
        adam.step(0.05);
        INDArray x2 = rand(random, ROWS, C);
        LowRankExpert.forward(x2, a.value(), b.value(), CONFIG.scale(), h1, h);
        float[] after = dispatch(RUN, 1, Direction.FORWARD_INPUT, x2, C, 10_000);
        assertArrayEquals(h.data().asFloat(), after, "after one AdamW step the expert answers as the reference");
        assertTrue(Math.abs(after[0]) > 0, "B moved away from zero");

        // what an expert cannot serve is dropped, counted, and not answered
        int receivedBefore = received;
        assertNull(dispatch(RUN, 1, Direction.FORWARD_INPUT, rand(random, ROWS, C + 1), C + 1, 300), "wrong width");
        assertNull(dispatch(RUN + 1, 1, Direction.FORWARD_INPUT, x2, C, 300), "unknown run");
        assertNull(dispatch(RUN, 5, Direction.FORWARD_INPUT, x2, C, 300), "expert not hosted here");
        assertEquals(1, experts.receiver().dropped(FrameError.UNKNOWN_RUN));
        assertEquals(2, experts.receiver().dropped(FrameError.UNEXPECTED));
        assertEquals(3, experts.receiver().droppedTotal());
        assertArrayEquals(h.data().asFloat(), dispatch(RUN, 1, Direction.FORWARD_INPUT, x2, C, 10_000), "still serving after the drops");
        // expert 1 answers in order on one publication: an answer to a dropped frame would have come before this one
        assertEquals(receivedBefore + 1, received, "the dropped dispatches were answered");
    }

    @Test
    void anExpertThatCannotComputeAnswersWithAFailureFrameAtOnceAndGoesOnServing() throws Exception {
        assertTrue(!init(0, 1).hasFailed());
        MoeLora.ModuleInit ref = MoeLora.initialise(MODULES, CONFIG, SEED, DataType.FLOAT).get(0);
        Parameter a = new Parameter("a", ref.a()[1].dup()), b = new Parameter("b", ref.b()[1].dup());
        SplittableRandom random = new SplittableRandom(5);
        INDArray x = rand(random, ROWS, C), dh = rand(random, ROWS, D);
        INDArray h1 = Nd4j.create(DataType.FLOAT, ROWS, CONFIG.expertRank()), h = Nd4j.create(DataType.FLOAT, ROWS, D);
        INDArray dh1 = Nd4j.create(DataType.FLOAT, ROWS, CONFIG.expertRank()), dx = Nd4j.create(DataType.FLOAT, ROWS, C);

        TensorFrameHeader noForward = dispatchFailing(1, Direction.BACKWARD_INPUT, dh, D);
        assertEquals(TensorFrameHeader.newBuilder().setRunId(RUN).setStep(0).setMicroBatch(0).setLayer(0).setModule(0).setExpert(1)
                .setSource(1).setDirection(Direction.FAILURE).setChunkCount(1).setFailure(noForward.getFailure()).build(), noForward,
                "addressed to the dispatch it answers, from expert 1");
        assertContains(noForward.getFailure(), "expert 1 could not compute the BACKWARD_OUTPUT of module layer.0.m",
                "step 0, micro-batch 0", "IllegalStateException", "a backward of 5 rows, but no forward ran in this slot");

        LowRankExpert.forward(x, a.value(), b.value(), CONFIG.scale(), h1, h);
        assertArrayEquals(h.data().asFloat(), dispatch(RUN, 1, Direction.FORWARD_INPUT, x, C, FRAME_TIMEOUT.toMillis()));
        TensorFrameHeader tooManyRows = dispatchFailing(1, Direction.BACKWARD_INPUT, rand(random, ROWS + 2, D), D);
        assertContains(tooManyRows.getFailure(), "a backward of 7 rows, but the forward sent 5");

        // the failed backwards changed nothing: the backward of the forward's rows is the reference's, and so is the gradient
        LowRankExpert.backward(dh, x.dup(), h1, a.value(), b.value(), CONFIG.scale(), a.grad(), b.grad(), dh1, dx);
        assertArrayEquals(dx.data().asFloat(), dispatch(RUN, 1, Direction.BACKWARD_INPUT, dh, D, FRAME_TIMEOUT.toMillis()));
        List<ParameterNorm> norms = request(ExpertRequest.newBuilder().setReduce(ReduceGradients.newBuilder().setStep(0).setMicroBatches(1)))
                .getReduced().getNormsList();
        assertEquals(AdamW.norm(a), norms.get(2).getNorm(), 0.0);
        assertEquals(AdamW.norm(b), norms.get(3).getNorm(), 0.0);
        assertEquals(0, experts.receiver().droppedTotal());
    }

    @Test
    void aStepCommandAnExpertThrowsOnFailsTheRequestAtOnceWithTheCauseAndTheExpertGoesOnServing() throws Exception {
        assertTrue(!init(0, 1).hasFailed());
        long start = System.nanoTime();
        CoordinatorEvent reduce = answerTo(ExpertRequest.newBuilder().setReduce(ReduceGradients.newBuilder().setStep(0).setMicroBatches(2)));
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertTrue(reduce.hasFailed(), reduce.toString());
        assertTrue(took.compareTo(REQUEST_TIMEOUT.dividedBy(5)) < 0, "the failure came only after " + took);
        assertContains(reduce.getFailed().getMessage(), "test-node: expert ", ": reduce failed: IllegalArgumentException: expert ",
                ": 2 micro-batches, 1 gradient slots");

        // the expert kept its state and answers the next request as usual
        CoordinatorEvent again = answerTo(ExpertRequest.newBuilder().setReduce(ReduceGradients.newBuilder().setStep(0).setMicroBatches(1)));
        assertTrue(again.hasReduced(), again.toString());
        CoordinatorEvent apply = answerTo(ExpertRequest.newBuilder().setApply(ApplyUpdate.newBuilder().setStep(0).setLr(0.05).setClipFactor(1)));
        assertTrue(apply.hasApplied(), apply.toString());
        assertEquals(2, apply.getApplied().getStats().getDevicesList().stream().mapToInt(d -> d.getExpertsCount()).sum(),
                "the apply reports both experts' compute time: " + apply.getApplied().getStats());
    }

    @Test
    void anExpertThatCannotStartFailsTheInitAtOnceWithTheCause() throws Exception {
        long start = System.nanoTime();
        CoordinatorEvent init = init(0, 3);
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertTrue(init.hasFailed(), init.toString());
        assertTrue(took.compareTo(REQUEST_TIMEOUT.dividedBy(5)) < 0, "the failure came only after " + took);
        assertContains(init.getFailed().getMessage(), "test-node: init failed: expert 3 stopped (could not start: IllegalArgumentException: ",
                "expert 3 is outside [0, adapter.experts = 2)");
    }

    private static void assertContains(String text, String... parts) {
        for (String part : parts) assertTrue(text.contains(part), () -> "'" + part + "' missing from: " + text);
    }

    private static INDArray rand(SplittableRandom r, long rows, long cols) {
        INDArray t = Nd4j.create(DataType.FLOAT, rows, cols);
        for (long i = 0; i < t.length(); i++) t.putScalar(i, r.nextDouble(-1, 1));
        return t;
    }
}
