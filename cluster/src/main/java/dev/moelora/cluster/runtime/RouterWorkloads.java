package dev.moelora.cluster.runtime;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.job.InstructionEvaluation;
import dev.moelora.cluster.setup.AdapterFamily;
import dev.moelora.cluster.setup.DecoderCheckpoint;
import dev.moelora.cluster.setup.InstructionData;
import dev.moelora.cluster.setup.RunSetup;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.data.Task;
import dev.moelora.model.instruct.InstructionStep;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraAdapters;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.task.TaskModel;
import dev.moelora.model.train.Evaluation;
import dev.moelora.model.train.ExampleSampler;
import dev.moelora.model.train.OptimizerStep;
import dev.moelora.model.train.TrainConfig;
import dev.moelora.router.RouterActor;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/**
 * What a router of the expert-parallel runtime trains, built from the run's configuration text
 * exactly as the single-process jobs build it: an encoder's task model over its tasks (with the
 * task heads), or a LLaMA decoder over tokenized instructions (no heads; scored by the math
 * evaluation). Only MoELoRA runs here. It never decides the order of the examples: the
 * coordinator names every micro-batch by index.
 */
final class RouterWorkloads {
    private RouterWorkloads() {}

    static RouterActor.WorkloadFactory factory() {
        return (text, banks) -> {
            RunConfig config = RunConfig.parse(text);
            if (!config.string("adapter.type").equals("moelora")) {
                throw new IllegalArgumentException("the expert-parallel runtime runs MoELoRA; adapter.type is " + config.string("adapter.type"));
            }
            try {
                return config.string("model.name").equals("llama") ? decoder(config, banks) : encoder(config, banks);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
    }

    private static RouterActor.Workload encoder(RunConfig config, MoeLora.BankFactory banks) throws IOException {
        RunSetup s = RunSetup.build(config, banks);
        MoeLoraAdapters moe = (MoeLoraAdapters) s.adapters();
        ExampleSampler sampler = new ExampleSampler(s.tasks(), s.train().seed());
        TaskModel model = s.model();
        List<Task> tasks = s.tasks();
        return new Base(s.base().description(), moe, s.train(), model.heads().parameters(), sampler.size()) {
            @Override
            public OptimizerStep.Outcome trainStep(int[] examples, double lossScale) {
                TaskModel.Outcome o = model.trainStep(sampler.items(examples), lossScale);
                return new OptimizerStep.Outcome(o.loss(), o.tokens());
            }

            @Override
            public String evaluate(Path dir) throws IOException {
                return RouterActor.reportJson(Evaluation.run(model, tasks, train().evalBatchSize()));
            }
        };
    }

    private static RouterActor.Workload decoder(RunConfig config, MoeLora.BankFactory banks) throws IOException {
        InstructionData data = InstructionData.load(config);
        LlamaDecoder decoder = DecoderCheckpoint.decoder(data.modelDir());
        TrainConfig train = RunSetup.trainConfig(config);
        Adapters adapters = AdapterFamily.apply(config, decoder, train.seed(), banks);
        InstructionStep step = new InstructionStep(decoder, adapters, data.sequences(), data.padId(), train.gradAccum(),
                Math.max(train.batchSize(), train.evalBatchSize()));
        String base = DecoderCheckpoint.describe(data.modelDir(), decoder.config());
        return new Base(base, (MoeLoraAdapters) adapters, train, List.of(), data.sequences().size()) {
            @Override
            public OptimizerStep.Outcome trainStep(int[] examples, double lossScale) {
                return step.run(examples); // scaled by 1 / train.grad-accum, which is the coordinator's 1 / micro-batches
            }

            @Override
            public String evaluate(Path dir) throws IOException {
                adapters.setRowMask(null); // generation runs other row counts
                PrintStream quiet = new PrintStream(java.io.OutputStream.nullOutputStream());
                return InstructionEvaluation.run(decoder, adapters, data.tokenizer(), data.testSets(), data.maxNewTokens(), dir, quiet)
                        .json().toString();
            }
        };
    }

    /** The parts every workload has. */
    private abstract static class Base implements RouterActor.Workload {
        private final String baseModel;
        private final MoeLoraAdapters adapters;
        private final TrainConfig train;
        private final List<Parameter> heads;
        private final int examples;

        Base(String baseModel, MoeLoraAdapters adapters, TrainConfig train, List<Parameter> heads, int examples) {
            this.baseModel = baseModel;
            this.adapters = adapters;
            this.train = train;
            this.heads = List.copyOf(heads);
            this.examples = examples;
        }

        @Override public String baseModel() { return baseModel; }
        @Override public MoeLoraAdapters adapters() { return adapters; }
        @Override public TrainConfig train() { return train; }
        @Override public List<Parameter> heads() { return heads; }
        @Override public int trainingExamples() { return examples; }
    }
}
