package dev.moelora.model.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class GeneratedSuiteTest {

    private static final List<Task> SUITE = GeneratedSuite.create(42, 600, 200);

    @Test
    void sameSeedGivesIdenticalSuite() {
        assertEquals(SUITE, GeneratedSuite.create(42, 600, 200));
    }

    @Test
    void differentSeedsGiveDifferentExamplesInEveryTask() {
        List<Task> other = GeneratedSuite.create(43, 600, 200);
        for (int t = 0; t < SUITE.size(); t++) {
            assertNotEquals(SUITE.get(t).train(), other.get(t).train(), SUITE.get(t).name());
            assertNotEquals(SUITE.get(t).test(), other.get(t).test(), SUITE.get(t).name());
        }
    }

    @Test
    void oneTasksExamplesDoNotDependOnHowManyTheOthersDraw() {
        // Each task has its own random stream, so a longer train split only appends to it.
        List<Task> bigger = GeneratedSuite.create(42, 900, 200);
        for (int t = 0; t < SUITE.size(); t++) {
            assertEquals(SUITE.get(t).train(), bigger.get(t).train().subList(0, 600), SUITE.get(t).name());
        }
    }

    @Test
    void hasTheFiveTaskTypesInBothFormats() {
        assertEquals(List.of("category", "sentiment", "opposite", "larger", "negation"),
                SUITE.stream().map(Task::name).toList());
        assertEquals(Set.of(TaskFormat.MULTIPLE_CHOICE, TaskFormat.CLASSIFICATION),
                SUITE.stream().map(Task::format).collect(Collectors.toSet()));
        for (Task task : SUITE) {
            assertEquals(600, task.train().size(), task.name());
            assertEquals(200, task.test().size(), task.name());
        }
    }

    @Test
    void noExampleOccursTwiceWithinOrAcrossSplits() {
        for (Task task : SUITE) {
            Set<List<Object>> seen = new HashSet<>();
            for (Example e : concat(task.train(), task.test())) {
                assertTrue(seen.add(List.of(e.question(), Set.copyOf(e.choices()))), task.name() + ": " + e);
            }
        }
    }

    @Test
    void correctPositionsAndLabelsAreBalancedToWithinOne() {
        for (Task task : SUITE) {
            for (List<Example> split : List.of(task.train(), task.test())) {
                Map<Integer, Long> counts = split.stream()
                        .collect(Collectors.groupingBy(Example::answer, Collectors.counting()));
                int answers = split.get(0).choices().size();
                assertEquals(answers, counts.size(), task.name() + " " + counts);
                long spread = counts.values().stream().mapToLong(c -> c).max().orElseThrow()
                        - counts.values().stream().mapToLong(c -> c).min().orElseThrow();
                assertTrue(spread <= 1, task.name() + " " + counts);
            }
        }
    }

    @Test
    void everyExampleIsShortWellFormedAndOfItsTasksShape() {
        Map<String, Integer> choiceCounts = Map.of("category", 4, "sentiment", 2, "opposite", 3, "larger", 2,
                "negation", 2);
        for (Task task : SUITE) {
            for (Example e : concat(task.train(), task.test())) {
                assertTrue(e.question().split(" ").length < 20, e.question());
                assertEquals(choiceCounts.get(task.name()), e.choices().size(), task.name() + ": " + e);
                assertEquals(e.choices().size(), Set.copyOf(e.choices()).size(), "repeated choice: " + e);
                if (task.format() == TaskFormat.CLASSIFICATION) {
                    assertEquals(task.labels(), e.choices(), task.name());
                }
            }
        }
    }

    /**
     * larger and negation are checked outright. category, opposite and sentiment are checked
     * without a second copy of the generator's word lists, as consistency over every example: a
     * wrong answer would give some word two meanings (a member of two categories, two antonyms, or
     * both polarities) or make it its own distractor.
     */
    @Test
    void answersAreActuallyCorrect() {
        for (Example e : task("larger").test()) {
            int chosen = Integer.parseInt(e.choices().get(e.answer()));
            int other = Integer.parseInt(e.choices().get(1 - e.answer()));
            assertTrue(e.question().contains("larger") || e.question().contains("bigger")
                    ? chosen > other : chosen < other, e.toString());
        }
        Pattern cuePattern = Pattern.compile("^(?:what is|which word means) the opposite of (\\w+)\\?$");
        Map<String, String> antonym = new HashMap<>();
        for (Example e : concat(task("opposite").train(), task("opposite").test())) {
            Matcher m = cuePattern.matcher(e.question());
            assertTrue(m.matches(), e.question());
            String cue = m.group(1), answer = e.choices().get(e.answer());
            assertNotEquals(cue, answer, e.toString());
            assertEquals(antonym.computeIfAbsent(cue, c -> answer), answer, "two opposites of " + cue + ": " + e);
        }
        antonym.forEach((cue, answer) -> {
            if (antonym.containsKey(answer)) assertEquals(cue, antonym.get(answer), "the opposite of the opposite of " + cue);
        });
        Pattern phrasePattern = Pattern.compile("^which (?:of these is|word names) (.+)\\?$");
        Map<String, String> categoryOf = new HashMap<>();
        List<Example> categories = concat(task("category").train(), task("category").test());
        for (Example e : categories) {
            Matcher m = phrasePattern.matcher(e.question());
            assertTrue(m.matches(), e.question());
            String answer = e.choices().get(e.answer());
            assertEquals(categoryOf.computeIfAbsent(answer, w -> m.group(1)), m.group(1), answer + " answers two categories: " + e);
        }
        for (Example e : categories) {
            Matcher m = phrasePattern.matcher(e.question());
            assertTrue(m.matches());
            for (int i = 0; i < e.choices().size(); i++) {
                if (i != e.answer()) assertNotEquals(m.group(1), categoryOf.get(e.choices().get(i)), "a distractor of its own category: " + e);
            }
        }
        // sentiment: the polar word (the adjective at the end, or the verb before the two-word subject)
        // is positive or negative whatever the sentence; negation flips the label
        Map<String, Boolean> positiveWord = new HashMap<>();
        for (Example e : concat(task("sentiment").train(), task("sentiment").test())) {
            String[] words = e.question().split(" ");
            boolean verb = !e.question().contains(" was ") && !e.question().contains("i found ");
            String polar = verb ? words[words.length - 3] : words[words.length - 1];
            boolean negated = e.question().contains(" not ");
            boolean positive = e.choices().get(e.answer()).equals("positive");
            assertEquals(positiveWord.computeIfAbsent(polar, w -> positive != negated), positive != negated, "polarity of " + polar + ": " + e);
        }
        assertEquals(Set.of(true, false), Set.copyOf(positiveWord.values()), positiveWord.toString());
        // A statement and its negation must carry opposite labels wherever both were drawn.
        Map<String, String> truthOf = new HashMap<>();
        for (Example e : concat(task("negation").train(), task("negation").test())) {
            truthOf.put(e.question(), e.choices().get(e.answer()));
        }
        int pairs = 0;
        for (Map.Entry<String, String> negated : truthOf.entrySet()) {
            String affirmative = truthOf.get(negated.getKey().replace(" is not ", " is "));
            if (negated.getKey().contains(" is not ") && affirmative != null) {
                assertNotEquals(affirmative, negated.getValue(), negated.getKey());
                pairs++;
            }
        }
        assertTrue(pairs > 10, "only " + pairs + " statement/negation pairs to compare");
    }

    @Test
    void chanceMatchesEachTasksFormat() {
        assertEquals(0.25, task("category").chance(), 1e-12);
        assertEquals(0.5, task("sentiment").chance(), 1e-12);
        assertEquals(1.0 / 3, task("opposite").chance(), 1e-12);
        assertEquals(0.5, task("larger").chance(), 1e-12);
        assertEquals(0.5, task("negation").chance(), 1e-12);
    }

    @Test
    void labelSetsAreFixed() {
        assertEquals(List.of("negative", "positive"), task("sentiment").labels());
        assertEquals(List.of("true", "false"), task("negation").labels());
        assertEquals(List.of(), task("category").labels());
    }

    @Test
    void askingForMoreExamplesThanATaskHasFailsWithItsName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GeneratedSuite.create(1, 3000, 100));
        assertTrue(e.getMessage().contains("task negation ran out of distinct examples"), e.getMessage());
    }

    @Test
    void rejectsEmptyTestSplitAndNegativeCounts() {
        assertThrows(IllegalArgumentException.class, () -> GeneratedSuite.create(1, 10, 0));
        assertThrows(IllegalArgumentException.class, () -> GeneratedSuite.create(1, -1, 10));
    }

    private static Task task(String name) {
        return SUITE.stream().filter(t -> t.name().equals(name)).findFirst().orElseThrow();
    }

    private static List<Example> concat(List<Example> a, List<Example> b) {
        return Stream.concat(a.stream(), b.stream()).toList();
    }
}
