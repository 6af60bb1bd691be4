package dev.moelora.router;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.model.train.Evaluation;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The router's evaluation report: JSON the coordinator parses back, whatever the task names hold. Must never start an actor. */
class RouterActorReportTest {
    @Test
    void theReportHasOneObjectPerTaskWithTaskExamplesCorrectAndChance() throws Exception {
        assertEquals("[{\"task\":\"boolq\",\"examples\":10,\"correct\":7,\"chance\":0.5},"
                        + "{\"task\":\"copa\",\"examples\":4,\"correct\":0,\"chance\":0.25}]",
                RouterActor.reportJson(List.of(new Evaluation.TaskScore("boolq", 10, 7, 0.5), new Evaluation.TaskScore("copa", 4, 0, 0.25))));
        assertEquals("[]", RouterActor.reportJson(List.of()));
    }

    @Test
    void taskNamesWithQuotesBackslashesAndControlCharactersSurviveTheRoundTrip() throws Exception {
        List<String> names = List.of("say \"yes\"", "C:\\tasks\\rte", "two\nlines\tand a tab", "caf\u00e9 \u2603", "\u0001");
        List<Evaluation.TaskScore> scores = names.stream().map(n -> new Evaluation.TaskScore(n, 3, 2, 1.0 / 3)).toList();
        JsonNode report = new ObjectMapper().readTree(RouterActor.reportJson(scores));
        assertEquals(names.size(), report.size());
        for (int i = 0; i < names.size(); i++) {
            JsonNode task = report.get(i);
            assertEquals(names.get(i), task.get("task").asText());
            assertEquals(3, task.get("examples").asInt());
            assertEquals(2, task.get("correct").asInt());
            assertEquals(1.0 / 3, task.get("chance").asDouble(), 0.0);
            assertEquals(4, task.size(), "no other fields");
        }
    }
}
