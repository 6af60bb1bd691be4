package dev.moelora.cluster.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.observe.JsonlRecorder;
import dev.moelora.cluster.observe.RunRecorder;
import dev.moelora.cluster.tensorboard.TensorBoardRecorder;
import dev.moelora.model.train.Evaluation;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

/**
 * Where a run writes, and the files every job writes the same way: {@code config.conf} (the
 * resolved configuration) when it starts, {@code eval.md} and {@code eval.json} when it has
 * scores; and where its records go. It never decides what a run computes.
 */
public final class RunDirectory {
    public static final String CONFIG = "config.conf";
    private static final ObjectMapper JSON = new ObjectMapper();

    private RunDirectory() {}

    /** {@code <run.dir>/<run.name>}, or {@code <run.dir>/train-<timestamp>} when the name is empty. */
    public static Path of(RunConfig config) {
        String name = config.string("run.name");
        if (name.isEmpty()) name = "train-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
        return Path.of(config.string("run.dir")).resolve(name);
    }

    /** Creates the run directory and writes the resolved configuration into it. */
    public static Path create(RunConfig config) throws IOException {
        Path dir = of(config);
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(CONFIG), config.render());
        return dir;
    }

    /** eval.md (the table) and eval.json (one object per task). */
    public static void writeEvaluation(Path runDir, String table, JsonNode json) throws IOException {
        Files.writeString(runDir.resolve("eval.md"), table);
        Files.writeString(runDir.resolve("eval.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json));
    }

    /** Scores as eval.json holds them: task, examples, correct, accuracy, chance. */
    public static ArrayNode scoresJson(List<Evaluation.TaskScore> scores) {
        ArrayNode out = JSON.createArrayNode();
        for (Evaluation.TaskScore s : scores) {
            ObjectNode o = out.addObject();
            o.put("task", s.task());
            o.put("examples", s.examples());
            o.put("correct", s.correct());
            o.put("accuracy", s.accuracy());
            o.put("chance", s.chance());
        }
        return out;
    }

    /** The scores of an eval.json-shaped array (as a router reports them). */
    public static List<Evaluation.TaskScore> scores(JsonNode json) {
        List<Evaluation.TaskScore> out = new ArrayList<>();
        for (JsonNode n : json) {
            out.add(new Evaluation.TaskScore(n.get("task").asText(), n.get("examples").asInt(), n.get("correct").asInt(), n.get("chance").asDouble()));
        }
        return out;
    }

    /** Where a run's records go: its JSONL files and its TensorBoard event file ({@code <run dir>/tensorboard/}). */
    public static RunRecorder recorders(Path runDir) throws IOException {
        return RunRecorder.all(List.of(new JsonlRecorder(runDir), new TensorBoardRecorder(runDir)));
    }
}
