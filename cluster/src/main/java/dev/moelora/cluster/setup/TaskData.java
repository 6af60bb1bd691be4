package dev.moelora.cluster.setup;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.data.GeneratedSuite;
import dev.moelora.model.data.LlmAdaptersDataset;
import dev.moelora.model.data.Task;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The tasks of a run, from the generated suite or LLM-Adapters task directories. */
public final class TaskData {
    private TaskData() {}

    public static List<Task> load(RunConfig config) throws IOException {
        String source = config.string("data.source");
        switch (source) {
            case "generated":
                return GeneratedSuite.create(config.longValue("data.generated.seed"), config.integer("data.generated.train-per-task"),
                        config.integer("data.generated.test-per-task"));
            case "llm-adapters": {
                Path root = Path.of(config.string("data.llm-adapters.root"));
                if (!Files.isDirectory(root)) {
                    throw new IllegalArgumentException("data.llm-adapters.root: " + root.toAbsolutePath() + " is not a directory");
                }
                int maxTrain = config.integer("data.llm-adapters.max-train-per-task");
                int maxTest = config.integer("data.llm-adapters.max-test-per-task");
                List<Task> tasks = new ArrayList<>();
                for (String name : config.strings("data.llm-adapters.tasks")) {
                    Task t = LlmAdaptersDataset.load(root.resolve(name));
                    tasks.add(new Task(t.name(), t.format(), t.labels(), head(t.train(), maxTrain), head(t.test(), maxTest)));
                }
                return tasks;
            }
            default:
                throw new IllegalArgumentException("data.source must be 'generated' or 'llm-adapters' for an encoder ('instructions' with model.name = llama), got '" + source + "'");
        }
    }

    private static <T> List<T> head(List<T> list, int max) {
        return max > 0 && list.size() > max ? list.subList(0, max) : list;
    }
}
