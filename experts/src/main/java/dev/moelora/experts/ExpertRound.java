package dev.moelora.experts;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * One request of an {@link ExpertNode} to its experts, as a short-lived aggregator: it sends each
 * expert the command (or, for an init, waits for each to report it started), collects one reply
 * per expert, and tells the node once — every reply in expert order, or the first failure: an
 * expert's own {@link ExpertActor.StepFailed}, an expert that stopped, or its one timeout naming
 * the experts still silent. Then it stops. It holds no state of the experts and computes nothing.
 */
final class ExpertRound {
    sealed interface Message {}

    /** An expert's reply. */
    record Answer(ExpertActor.Reply reply) implements Message {}

    /** The node saw an expert stop. */
    record Gone(int expert, String why) implements Message {}

    private record Timeout() implements Message {}

    private ExpertRound() {}

    /** Sends {@code command} (built with this round's reply address) to every expert and gathers their replies. */
    static Behavior<Message> create(String what, Map<Integer, ActorRef<ExpertActor.Command>> experts,
                                    Function<ActorRef<ExpertActor.Reply>, ExpertActor.Command> command, Duration timeout,
                                    ActorRef<ExpertNode.Command> node, long round) {
        return Behaviors.setup(ctx -> {
            ActorRef<ExpertActor.Reply> replies = ctx.messageAdapter(ExpertActor.Reply.class, Answer::new);
            for (ActorRef<ExpertActor.Command> e : experts.values()) e.tell(command.apply(replies));
            return gathering(what, new TreeSet<>(experts.keySet()), timeout, node, round);
        });
    }

    /** Gathers replies the experts send on their own (their Started, at an init). */
    static Behavior<Message> collecting(String what, List<Integer> experts, Duration timeout, ActorRef<ExpertNode.Command> node, long round) {
        return gathering(what, new TreeSet<>(experts), timeout, node, round);
    }

    private static Behavior<Message> gathering(String what, TreeSet<Integer> awaited, Duration timeout, ActorRef<ExpertNode.Command> node,
                                               long round) {
        if (awaited.isEmpty()) {
            node.tell(new ExpertNode.RoundDone(round, List.of()));
            return Behaviors.stopped();
        }
        Map<Integer, ExpertActor.Reply> got = new TreeMap<>();
        return Behaviors.withTimers(timers -> {
            timers.startSingleTimer(new Timeout(), timeout);
            return Behaviors.receive(Message.class)
                    .onMessage(Answer.class, a -> {
                        ExpertActor.Reply r = a.reply();
                        if (!awaited.contains(r.expert())) return Behaviors.same();
                        if (r instanceof ExpertActor.StepFailed f) {
                            node.tell(new ExpertNode.RoundFailed(round, f.message()));
                            return Behaviors.stopped();
                        }
                        got.put(r.expert(), r);
                        if (got.size() < awaited.size()) return Behaviors.same();
                        node.tell(new ExpertNode.RoundDone(round, new ArrayList<>(got.values())));
                        return Behaviors.stopped();
                    })
                    .onMessage(Gone.class, g -> {
                        if (!awaited.contains(g.expert()) || got.containsKey(g.expert())) return Behaviors.same();
                        node.tell(new ExpertNode.RoundFailed(round, what + " failed: expert " + g.expert() + " stopped (" + g.why() + ")"));
                        return Behaviors.stopped();
                    })
                    .onMessage(Timeout.class, t -> {
                        List<Integer> silent = new ArrayList<>(awaited);
                        silent.removeAll(got.keySet());
                        node.tell(new ExpertNode.RoundFailed(round, what + " timed out after " + timeout.toSeconds() + " s: no answer from experts " + silent));
                        return Behaviors.stopped();
                    })
                    .build();
        });
    }
}
