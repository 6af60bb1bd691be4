package dev.moelora.cluster.job;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.core.JsonProcessingException;
import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.observe.RecordStream;
import dev.moelora.model.checkpoint.DurableFiles;
import dev.moelora.model.train.Evaluation;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

/**
 * Where a run writes, and the files every job writes the same way: {@code config.conf} (the
 * resolved configuration) when it starts, {@code eval.md} and {@code eval.json} when it has
 * scores; and the record files put back to a checkpoint's step when a run resumes. It never
 * decides what a run computes.
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
        List<Evaluation.TaskScore> out = new java.util.ArrayList<>();
        for (JsonNode n : json) {
            out.add(new Evaluation.TaskScore(n.get("task").asText(), n.get("examples").asInt(), n.get("correct").asInt(), n.get("chance").asDouble()));
        }
        return out;
    }

    /** The record streams whose lines belong to a step: a resumed run drops those of the steps it will run again. */
    private static final List<RecordStream> PER_STEP = List.of(RecordStream.METRICS, RecordStream.ROUTING, RecordStream.NODES);

    /**
     * Puts the run directory's per-step records (metrics.jsonl, routing.jsonl, nodes.jsonl) back to
     * {@code step}: lines of later steps are removed, so a run killed after its last checkpoint and
     * resumed from it has every step once. events.jsonl keeps everything (it is the run's history).
     * A torn last line (a process killed while writing it) is dropped; any other line that is not a
     * JSON object with an integer {@code step} is an error naming the file and line.
     */
    public static void rewindRecords(Path runDir, long step) throws IOException {
        for (RecordStream stream : PER_STEP) {
            Path file = runDir.resolve(stream.file());
            if (!Files.isRegularFile(file)) continue;
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            List<String> kept = new ArrayList<>();
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                JsonNode n;
                try {
                    n = JSON.readTree(line);
                } catch (JsonProcessingException e) {
                    if (i == lines.size() - 1) continue;
                    throw new IOException(file + ": line " + (i + 1) + " is not JSON: " + e.getOriginalMessage(), e);
                }
                JsonNode s = n == null ? null : n.get("step");
                if (s == null || !s.canConvertToLong()) throw new IOException(file + ": line " + (i + 1) + " has no integer 'step'");
                if (s.asLong() <= step) kept.add(line);
            }
            if (kept.size() == lines.size()) continue;
            StringBuilder text = new StringBuilder();
            for (String line : kept) text.append(line).append('\n');
            DurableFiles.write(file, text.toString().getBytes(StandardCharsets.UTF_8));
        }
    }
}
