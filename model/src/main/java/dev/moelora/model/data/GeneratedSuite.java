package dev.moelora.model.data;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The embedded default data, used when the user gives none: a seeded multi-task suite of short English
 * tasks (every question under 20 words, so sequences stay short) that need different skills, so that
 * experts have something to specialise on. Each is easy enough that a small pretrained sentence encoder
 * fine-tuned with LoRA for a few hundred steps clearly beats chance, and none is answerable by matching
 * surface similarity alone.
 *
 * <ul>
 *   <li>{@code category} (multiple choice, 4): "which of these is a kind of fruit?" with one member of
 *       the category and three words from three other categories (11 categories x 12 words).
 *       Skill: word meaning and taxonomy.
 *   <li>{@code sentiment} (classification, {@code [negative, positive]}): "overall, the service was
 *       really dreadful", "i did not enjoy the trip". A quarter of the sentences are negated, which
 *       flips the label, so a bag of polar words is not enough. Skill: polarity and its negation.
 *   <li>{@code opposite} (multiple choice, 3): "what is the opposite of hot?" with the antonym, and as
 *       distractors words from other antonym pairs; half the time one distractor is the cue word itself,
 *       which a similarity-based scorer would prefer. Skill: antonymy, as opposed to relatedness.
 *   <li>{@code larger} (multiple choice, 2): "which is larger, 37 or 52?" or "which is smaller, ...?",
 *       numbers 1-99 as choices. Skill: magnitude, and reading which comparison is asked.
 *   <li>{@code negation} (classification, {@code [true, false]}, the same order as BoolQ's): "a dog is a
 *       kind of animal" (true), "a dog is not a kind of animal" (false), "a hammer is not a kind of
 *       animal" (true), built from the {@code category} word lists. Skill: truth under negation.
 * </ul>
 *
 * <p>Guarantees: the same seed gives identical tasks, and each task draws from its own stream split off
 * the seed, so one task's example counts never change another's examples. No (question, set of choices)
 * occurs twice in a task, so train and test are disjoint. The correct position (multiple choice) or
 * label (classification) is assigned from a fresh random permutation every k examples, so within each
 * split the counts per position or label differ by at most one.
 *
 * <p>It must never read files, the clock or any global random state: the suite is a pure function of
 * its arguments, which is what makes a run with the default data reproducible.
 */
public final class GeneratedSuite {

    /** Redraws allowed for one example before concluding the task's space of examples is used up. */
    private static final int MAX_ATTEMPTS = 10_000;

    private GeneratedSuite() {
    }

    /**
     * Builds the suite: category, sentiment, opposite, larger, negation, in that order.
     *
     * @throws IllegalArgumentException if {@code trainPerTask < 0}, {@code testPerTask < 1}, or a task
     *     cannot produce that many distinct examples (negation has about 2,900)
     */
    public static List<Task> create(long seed, int trainPerTask, int testPerTask) {
        if (trainPerTask < 0 || testPerTask < 1) {
            throw new IllegalArgumentException(
                    "need trainPerTask >= 0 and testPerTask >= 1, got " + trainPerTask + " and " + testPerTask);
        }
        SplittableRandom root = new SplittableRandom(seed);
        List<Task> tasks = new ArrayList<>();
        for (Generator generator : GENERATORS) {
            tasks.add(generator.build(root.split(), trainPerTask, testPerTask));
        }
        return List.copyOf(tasks);
    }

    /** Draws one example whose correct choice (or label) is at index {@code answer}. */
    @FunctionalInterface
    private interface Draw {
        Example draw(SplittableRandom rng, int answer);
    }

    /** One task type: {@code answers} is the number of choices (multiple choice) or labels (classification). */
    private record Generator(String name, TaskFormat format, List<String> labels, int answers, Draw draw) {

        static Generator multipleChoice(String name, int choices, Draw draw) {
            return new Generator(name, TaskFormat.MULTIPLE_CHOICE, List.of(), choices, draw);
        }

        static Generator classification(String name, List<String> labels, Draw draw) {
            return new Generator(name, TaskFormat.CLASSIFICATION, labels, labels.size(), draw);
        }

        Task build(SplittableRandom rng, int trainCount, int testCount) {
            Set<String> seen = new HashSet<>();
            List<Example> train = split(rng, trainCount, seen);
            List<Example> test = split(rng, testCount, seen);
            return new Task(name, format, labels, train, test);
        }

        private List<Example> split(SplittableRandom rng, int count, Set<String> seen) {
            List<Example> examples = new ArrayList<>(count);
            int[] positions = new int[answers];
            for (int i = 0; i < count; i++) {
                if (i % answers == 0) {
                    for (int p = 0; p < answers; p++) {
                        positions[p] = p;
                    }
                    shuffle(positions, rng);
                }
                examples.add(distinct(rng, positions[i % answers], seen));
            }
            return examples;
        }

        private Example distinct(SplittableRandom rng, int answer, Set<String> seen) {
            for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
                Example example = draw.draw(rng, answer);
                // Choice order is not part of identity: the same items reordered are the same question.
                List<String> choices = new ArrayList<>(example.choices());
                choices.sort(null);
                if (seen.add(example.question() + '\u0000' + String.join("\u0000", choices))) {
                    return example;
                }
            }
            throw new IllegalArgumentException("task " + name + " ran out of distinct examples after "
                    + seen.size() + "; ask for fewer train or test examples per task");
        }
    }

    // ---- category and negation: shared word lists --------------------------------------------------

    /** A category as it reads in a sentence ("a kind of fruit") and 12 unambiguous members. */
    private record Category(String phrase, List<String> words) {
    }

    private static final List<Category> CATEGORIES = List.of(
            new Category("a kind of fruit", List.of("apple", "banana", "cherry", "grape", "lemon", "mango",
                    "orange", "peach", "pear", "plum", "strawberry", "watermelon")),
            new Category("a kind of vegetable", List.of("carrot", "potato", "onion", "cabbage", "broccoli",
                    "lettuce", "cucumber", "celery", "radish", "turnip", "beet", "leek")),
            new Category("a kind of animal", List.of("dog", "cat", "horse", "cow", "lion", "tiger", "rabbit",
                    "elephant", "monkey", "sheep", "bear", "wolf")),
            new Category("a kind of tool", List.of("hammer", "wrench", "screwdriver", "saw", "drill", "chisel",
                    "shovel", "rake", "axe", "crowbar", "trowel", "mallet")),
            new Category("a kind of vehicle", List.of("car", "bus", "truck", "train", "bicycle", "motorcycle",
                    "airplane", "boat", "ship", "tractor", "scooter", "van")),
            new Category("a musical instrument", List.of("piano", "guitar", "violin", "drum", "flute", "trumpet",
                    "cello", "harp", "clarinet", "saxophone", "banjo", "trombone")),
            new Category("a piece of furniture", List.of("chair", "table", "sofa", "bed", "desk", "dresser",
                    "bookcase", "stool", "bench", "cabinet", "wardrobe", "ottoman")),
            new Category("a piece of clothing", List.of("shirt", "jacket", "sweater", "coat", "dress", "skirt",
                    "scarf", "glove", "sock", "hat", "blouse", "vest")),
            new Category("a part of the body", List.of("hand", "foot", "elbow", "knee", "shoulder", "ear", "nose",
                    "finger", "ankle", "wrist", "chin", "thumb")),
            new Category("a kind of flower", List.of("rose", "tulip", "daisy", "lily", "orchid", "sunflower",
                    "poppy", "daffodil", "iris", "carnation", "marigold", "lavender")),
            new Category("a kind of building", List.of("house", "school", "church", "hospital", "castle", "barn",
                    "tower", "factory", "hotel", "library", "museum", "palace")));

    private static Example category(SplittableRandom rng, int answer) {
        int target = rng.nextInt(CATEGORIES.size());
        int[] others = distinctIndices(rng, CATEGORIES.size(), 3, target);
        List<String> distractors = new ArrayList<>();
        for (int other : others) {
            distractors.add(pick(rng, CATEGORIES.get(other).words()));
        }
        Category category = CATEGORIES.get(target);
        String template = pick(rng, List.of("which of these is %s?", "which word names %s?"));
        return new Example(template.formatted(category.phrase()),
                place(rng, pick(rng, category.words()), distractors, answer), answer);
    }

    private static final List<String> TRUE_FALSE = List.of("true", "false");

    private static Example negation(SplittableRandom rng, int label) {
        boolean statementTrue = TRUE_FALSE.get(label).equals("true");
        int target = rng.nextInt(CATEGORIES.size());
        // Members are rarer than non-members (12 vs 120 words per category); drawing them a third of the
        // time keeps both kinds well represented without exhausting the members early.
        boolean member = rng.nextInt(3) == 0;
        String word = member
                ? pick(rng, CATEGORIES.get(target).words())
                : pick(rng, CATEGORIES.get(distinctIndices(rng, CATEGORIES.size(), 1, target)[0]).words());
        boolean negated = member != statementTrue;
        String statement = article(word) + " " + word + " is " + (negated ? "not " : "") + CATEGORIES.get(target).phrase();
        return new Example(statement, TRUE_FALSE, label);
    }

    private static String article(String word) {
        return "aeiou".indexOf(word.charAt(0)) >= 0 ? "an" : "a";
    }

    // ---- sentiment ---------------------------------------------------------------------------------

    private static final List<String> SENTIMENT_LABELS = List.of("negative", "positive");
    private static final List<String> SUBJECTS = List.of("the movie", "the food", "the service", "the hotel",
            "the book", "the concert", "the game", "the weather", "this phone", "the trip", "the coffee", "the class");
    private static final List<String> POSITIVE_ADJECTIVES = List.of("good", "great", "wonderful", "excellent",
            "delightful", "pleasant", "amazing", "fantastic", "lovely", "superb", "enjoyable", "brilliant");
    private static final List<String> NEGATIVE_ADJECTIVES = List.of("bad", "awful", "terrible", "horrible",
            "boring", "dreadful", "disappointing", "poor", "unpleasant", "lousy", "miserable", "annoying");
    /** Verbs as {base, past}: the negated form needs the base ("did not enjoy"), the plain one the past. */
    private static final List<List<String>> POSITIVE_VERBS = List.of(List.of("love", "loved"),
            List.of("like", "liked"), List.of("enjoy", "enjoyed"), List.of("adore", "adored"),
            List.of("admire", "admired"), List.of("appreciate", "appreciated"));
    private static final List<List<String>> NEGATIVE_VERBS = List.of(List.of("hate", "hated"),
            List.of("dislike", "disliked"), List.of("despise", "despised"), List.of("regret", "regretted"),
            List.of("resent", "resented"), List.of("loathe", "loathed"));
    private static final List<String> OPENERS = List.of("", "honestly, ", "overall, ", "i think ", "to be fair, ",
            "yesterday ");
    private static final List<String> INTENSIFIERS = List.of("", "really ", "very ", "quite ", "truly ");

    private static Example sentiment(SplittableRandom rng, int label) {
        boolean positive = SENTIMENT_LABELS.get(label).equals("positive");
        boolean negated = rng.nextInt(4) == 0;
        boolean positiveWord = positive != negated;
        String opener = pick(rng, OPENERS);
        String subject = pick(rng, SUBJECTS);
        String not = negated ? "not " : "";
        String sentence = switch (rng.nextInt(3)) {
            case 0 -> opener + subject + " was " + not + pick(rng, INTENSIFIERS)
                    + pick(rng, positiveWord ? POSITIVE_ADJECTIVES : NEGATIVE_ADJECTIVES);
            case 1 -> opener + "i found " + subject + " " + not + pick(rng, INTENSIFIERS)
                    + pick(rng, positiveWord ? POSITIVE_ADJECTIVES : NEGATIVE_ADJECTIVES);
            default -> {
                List<String> verb = pick(rng, positiveWord ? POSITIVE_VERBS : NEGATIVE_VERBS);
                yield opener + "i " + (negated ? "did not " + verb.get(0) : verb.get(1)) + " " + subject;
            }
        };
        return new Example(sentence, SENTIMENT_LABELS, label);
    }

    // ---- opposite ----------------------------------------------------------------------------------

    /** Antonym pairs; no word occurs in two pairs, so every distractor is unambiguously wrong. */
    private static final List<List<String>> ANTONYMS = List.of(List.of("hot", "cold"), List.of("big", "small"),
            List.of("fast", "slow"), List.of("happy", "sad"), List.of("up", "down"), List.of("open", "closed"),
            List.of("early", "late"), List.of("rich", "poor"), List.of("wet", "dry"), List.of("hard", "soft"),
            List.of("loud", "quiet"), List.of("full", "empty"), List.of("young", "old"), List.of("strong", "weak"),
            List.of("clean", "dirty"), List.of("heavy", "light"), List.of("thick", "thin"), List.of("wide", "narrow"),
            List.of("deep", "shallow"), List.of("win", "lose"), List.of("buy", "sell"), List.of("push", "pull"),
            List.of("give", "take"), List.of("above", "below"), List.of("inside", "outside"), List.of("day", "night"),
            List.of("friend", "enemy"), List.of("begin", "end"), List.of("first", "last"), List.of("north", "south"),
            List.of("east", "west"), List.of("question", "answer"), List.of("tall", "short"), List.of("sweet", "sour"),
            List.of("sharp", "dull"), List.of("safe", "dangerous"), List.of("easy", "difficult"),
            List.of("cheap", "expensive"), List.of("left", "right"), List.of("arrive", "leave"));

    private static Example opposite(SplittableRandom rng, int answer) {
        int pair = rng.nextInt(ANTONYMS.size());
        int side = rng.nextInt(2);
        String cue = ANTONYMS.get(pair).get(side);
        String antonym = ANTONYMS.get(pair).get(1 - side);
        int[] others = distinctIndices(rng, ANTONYMS.size(), 2, pair);
        List<String> distractors = new ArrayList<>();
        distractors.add(pick(rng, ANTONYMS.get(others[0])));
        distractors.add(rng.nextBoolean() ? cue : pick(rng, ANTONYMS.get(others[1])));
        String template = pick(rng, List.of("what is the opposite of %s?", "which word means the opposite of %s?"));
        return new Example(template.formatted(cue), place(rng, antonym, distractors, answer), answer);
    }

    // ---- larger ------------------------------------------------------------------------------------

    private static Example larger(SplittableRandom rng, int answer) {
        int a = 1 + rng.nextInt(99);
        int b = 1 + rng.nextInt(98);
        if (b >= a) {
            b++; // draws b uniformly from 1..99 without a
        }
        boolean askLarger = rng.nextBoolean();
        int correct = askLarger ? Math.max(a, b) : Math.min(a, b);
        int other = askLarger ? Math.min(a, b) : Math.max(a, b);
        List<String> choices = place(rng, Integer.toString(correct), List.of(Integer.toString(other)), answer);
        String template = askLarger
                ? pick(rng, List.of("which is larger, %s or %s?", "which number is bigger: %s or %s?"))
                : pick(rng, List.of("which is smaller, %s or %s?", "which number is less: %s or %s?"));
        return new Example(template.formatted(choices.get(0), choices.get(1)), choices, answer);
    }

    private static final List<Generator> GENERATORS = List.of(
            Generator.multipleChoice("category", 4, GeneratedSuite::category),
            Generator.classification("sentiment", SENTIMENT_LABELS, GeneratedSuite::sentiment),
            Generator.multipleChoice("opposite", 3, GeneratedSuite::opposite),
            Generator.multipleChoice("larger", 2, GeneratedSuite::larger),
            Generator.classification("negation", TRUE_FALSE, GeneratedSuite::negation));

    // ---- drawing helpers ---------------------------------------------------------------------------

    private static <T> T pick(SplittableRandom rng, List<T> items) {
        return items.get(rng.nextInt(items.size()));
    }

    /** The distractors in random order with the correct choice inserted at {@code answer}. */
    private static List<String> place(SplittableRandom rng, String correct, List<String> distractors, int answer) {
        List<String> choices = new ArrayList<>(distractors);
        for (int i = choices.size() - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            choices.set(i, choices.set(j, choices.get(i)));
        }
        choices.add(answer, correct);
        return choices;
    }

    /** {@code count} distinct indices in [0, bound), none equal to {@code excluded}, in random order. */
    private static int[] distinctIndices(SplittableRandom rng, int bound, int count, int excluded) {
        int[] pool = new int[bound - 1];
        for (int i = 0, v = 0; v < bound; v++) {
            if (v != excluded) {
                pool[i++] = v;
            }
        }
        shuffle(pool, rng);
        int[] chosen = new int[count];
        System.arraycopy(pool, 0, chosen, 0, count);
        return chosen;
    }

    private static void shuffle(int[] values, SplittableRandom rng) {
        for (int i = values.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int swap = values[i];
            values[i] = values[j];
            values[j] = swap;
        }
    }
}
