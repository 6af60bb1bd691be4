package dev.moelora.cluster.runtime;

import dev.moelora.proto.control.CoordinatorEvent;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * One scatter/gather of the coordinator (init, the micro-batches of a step, reduce, apply,
 * checkpoint, restore, evaluate) as a short-lived aggregator: it sends every target its request
 * with this round's own reply address, collects the answers each node owes, and tells the run
 * once — every answer, in the order the targets were given, or the first failure: a node's
 * {@code Failed} answer, or its one timeout naming the nodes still silent. Then it stops, so an
 * answer that comes later (a step the run abandoned) goes nowhere. It decides nothing about the
 * run and holds no tensor.
 */
final class NodeRound {
    sealed interface Message {}

    private record Answer(CoordinatorEvent event) implements Message {}

    private record Timeout() implements Message {}

    /**
     * A node this round asks: how many answers it owes (a router running several micro-batches
     * answers each), and how to send it the request given the reply address.
     */
    record Target(String node, int answers, Consumer<String> send) {}

    /** What a finished round tells the run. */
    sealed interface Outcome extends ExpertParallelRun.Command {
        long round();
    }

    /** Every answer, grouped by target in the order given (a target's answers in arrival order). */
    record Done(long round, List<CoordinatorEvent> answers) implements Outcome {}

    /**
     * @param suspects the nodes whose answer failed or never came: who recovery should suspect
     * @param answered whether a node answered with a failure (its own message) rather than staying silent
     */
    record Failed(long round, String what, String reason, List<String> suspects, boolean answered) implements Outcome {}

    private NodeRound() {}

    static Behavior<Message> create(String what, List<Target> targets, Duration timeout, ActorRef<ExpertParallelRun.Command> run, long round) {
        return Behaviors.setup(ctx -> {
            ActorRef<CoordinatorEvent> inbox = ctx.messageAdapter(CoordinatorEvent.class, Answer::new);
            String replyTo = ActorRefResolver.get(ctx.getSystem()).toSerializationFormat(inbox);
            Map<String, Integer> owed = new LinkedHashMap<>();
            Map<String, List<CoordinatorEvent>> got = new LinkedHashMap<>();
            for (Target t : targets) {
                owed.merge(t.node(), t.answers(), Integer::sum);
                got.putIfAbsent(t.node(), new ArrayList<>());
            }
            if (owed.values().stream().mapToInt(Integer::intValue).sum() == 0) {
                run.tell(new Done(round, List.of()));
                return Behaviors.stopped();
            }
            for (Target t : targets) t.send().accept(replyTo);
            return Behaviors.withTimers(timers -> {
                timers.startSingleTimer(new Timeout(), timeout);
                return Behaviors.receive(Message.class)
                        .onMessage(Answer.class, a -> {
                            CoordinatorEvent e = a.event();
                            Integer left = owed.get(e.getFrom());
                            if (left == null || left == 0) {
                                ctx.getLog().warn("{}: an answer from {} it did not ask for; ignored", what, e.getFrom());
                                return Behaviors.same();
                            }
                            if (e.hasFailed()) {
                                run.tell(new Failed(round, what, e.getFailed().getMessage(), List.of(e.getFrom()), true));
                                return Behaviors.stopped();
                            }
                            owed.put(e.getFrom(), left - 1);
                            got.get(e.getFrom()).add(e);
                            if (owed.values().stream().anyMatch(n -> n > 0)) return Behaviors.same();
                            List<CoordinatorEvent> all = new ArrayList<>();
                            got.values().forEach(all::addAll);
                            run.tell(new Done(round, all));
                            return Behaviors.stopped();
                        })
                        .onMessage(Timeout.class, t -> {
                            List<String> silent = new ArrayList<>();
                            owed.forEach((node, left) -> {
                                if (left > 0) silent.add(node);
                            });
                            run.tell(new Failed(round, what, what + " timed out after " + timeout.toSeconds() + " s (runtime.timeout): no answer from "
                                    + silent, silent, false));
                            return Behaviors.stopped();
                        })
                        .build();
            });
        });
    }
}
