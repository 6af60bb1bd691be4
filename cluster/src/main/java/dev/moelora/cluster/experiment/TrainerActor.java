package dev.moelora.cluster.experiment;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.Job;
import dev.moelora.cluster.job.JobResult;
import java.io.PrintStream;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Runs one training run (a LoRA or Tied-LoRA baseline, or MoELoRA, by whichever job the run
 * configuration asks for) and reports how it went. It must be spawned on the pinned trainer
 * dispatcher: a run blocks its thread for minutes. It stops after one run.
 */
public final class TrainerActor {
    public sealed interface Command {}

    /** Train with this configuration; the log goes to {@code log}. */
    public record Train(String name, RunConfig config, Job job, PrintStream log, ActorRef<Reply> replyTo) implements Command {}

    public sealed interface Reply {}

    public record Trained(String name, JobResult result) implements Reply {}

    public record TrainingFailed(String name, String error) implements Reply {}

    private TrainerActor() {}

    public static Behavior<Command> create() {
        return Behaviors.receive(Command.class)
                .onMessage(Train.class, train -> {
                    try {
                        train.replyTo().tell(new Trained(train.name(), train.job().run(train.config(), train.log(), false)));
                    } catch (Exception e) {
                        train.replyTo().tell(new TrainingFailed(train.name(), e.getClass().getSimpleName() + ": " + e.getMessage()));
                    }
                    return Behaviors.stopped();
                })
                .build();
    }
}
