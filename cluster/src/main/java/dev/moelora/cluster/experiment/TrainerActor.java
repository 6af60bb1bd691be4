package dev.moelora.cluster.experiment;

import dev.moelora.cluster.run.RunConfig;
import dev.moelora.cluster.run.TrainJob;
import java.io.PrintStream;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Runs one single-process training run (a LoRA or Tied-LoRA baseline, or MoELoRA with its
 * experts colocated) and reports how it went. It must be spawned on the pinned trainer
 * dispatcher: a run blocks its thread for minutes. It stops after one run.
 */
public final class TrainerActor {
    public sealed interface Command {}

    /** Train with this configuration; the log goes to {@code log}. */
    public record Train(String name, RunConfig config, PrintStream log, ActorRef<Reply> replyTo) implements Command {}

    public sealed interface Reply {}

    public record Trained(String name, TrainJob.Result result) implements Reply {}

    public record TrainingFailed(String name, String error) implements Reply {}

    private TrainerActor() {}

    public static Behavior<Command> create() {
        return Behaviors.receive(Command.class)
                .onMessage(Train.class, train -> {
                    try {
                        train.replyTo().tell(new Trained(train.name(), TrainJob.run(train.config(), train.log(), false)));
                    } catch (Exception e) {
                        train.replyTo().tell(new TrainingFailed(train.name(), e.getClass().getSimpleName() + ": " + e.getMessage()));
                    }
                    return Behaviors.stopped();
                })
                .build();
    }
}
