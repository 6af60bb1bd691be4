package dev.moelora.cluster.experiment;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.Job;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Runs an experiment: its runs one after another (on 2 cores, in parallel they would only slow
 * each other and make tokens/s meaningless), each in its own {@link TrainerActor} on a pinned
 * thread, and replies with every run's outcome. It watches each trainer, so a trainer that dies
 * without replying fails its run instead of hanging the experiment. It never trains itself.
 */
public final class Coordinator {
    public sealed interface Command {}

    /** One run of an experiment: a name and its full configuration. */
    public record RunSpec(String name, RunConfig config) {}

    public record RunExperiment(List<RunSpec> runs, Job job, PrintStream log, ActorRef<ExperimentFinished> replyTo) implements Command {}

    /** Every run's outcome, in the order given: a {@link TrainerActor.Trained} or a {@link TrainerActor.TrainingFailed}. */
    public record ExperimentFinished(List<TrainerActor.Reply> outcomes) {}

    private record FromTrainer(TrainerActor.Reply reply) implements Command {}

    private Coordinator() {}

    public static Behavior<Command> create() {
        return Behaviors.receive(Command.class)
                .onMessage(RunExperiment.class, start -> Behaviors.setup(ctx -> running(ctx, start, new ArrayList<>())))
                .build();
    }

    private static Behavior<Command> running(ActorContext<Command> ctx, RunExperiment experiment, List<TrainerActor.Reply> done) {
        if (done.size() == experiment.runs().size()) {
            experiment.replyTo().tell(new ExperimentFinished(List.copyOf(done)));
            return Behaviors.stopped();
        }
        RunSpec spec = experiment.runs().get(done.size());
        experiment.log().printf("%n== run %d/%d: %s%n", done.size() + 1, experiment.runs().size(), spec.name());
        ActorRef<TrainerActor.Command> trainer = ctx.spawn(TrainerActor.create(), "trainer-" + done.size(),
                DispatcherSelector.fromConfig("moelora.trainer-dispatcher"));
        ctx.watch(trainer);
        trainer.tell(new TrainerActor.Train(spec.name(), spec.config(), experiment.job(), experiment.log(),
                ctx.messageAdapter(TrainerActor.Reply.class, FromTrainer::new)));
        boolean[] replied = {false};
        return Behaviors.receive(Command.class)
                .onMessage(FromTrainer.class, m -> {
                    replied[0] = true;
                    done.add(m.reply());
                    return Behaviors.same();
                })
                .onSignal(Terminated.class, t -> {
                    if (!replied[0]) done.add(new TrainerActor.TrainingFailed(spec.name(), "trainer stopped without a result"));
                    return running(ctx, experiment, done);
                })
                .build();
    }
}
