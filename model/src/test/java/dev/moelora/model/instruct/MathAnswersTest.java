package dev.moelora.model.instruct;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.data.AnswerKind;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** LLM-Adapters' extract_answer_number / extract_answer_letter on handwritten completions. */
class MathAnswersTest {
    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', textBlock = """
            The answer is 4.                                   | 4
            7 - 3 = 4 crayons. The answer is 4                 | 4
            He paid $1,234.50 in total.                        | 1234.5
            The temperature fell to -12 degrees.               | -12
            5-3 gives 2, no: 5-3=-2? no, 8                     | 8
            Each gets 3/4 of a pie.                            | 4
            The answer is 5.                                   | 5
            The answer is 0.125 km                             | 0.125
            x = 2.5.3                                          | 3
            It is 1,000,000 or so                              | 1000000
            ١٢ apples                                          | 12
            The answer is 9 ### Response: 11                   | 9
            """)
    void lastNumberAfterRemovingCommas(String completion, double expected) {
        assertEquals(expected, MathAnswers.number(completion), 0.0);
    }

    @Test
    void noNumberIsInfinityAndNeverCorrect() {
        assertEquals(Double.POSITIVE_INFINITY, MathAnswers.number("I do not know."));
        assertFalse(MathAnswers.correct(AnswerKind.NUMBER, "I do not know.", "0"));
        assertEquals("", MathAnswers.prediction(AnswerKind.NUMBER, "nothing"));
    }

    @Test
    void numbersWithinOneThousandthOfTheGoldAreCorrect() {
        assertTrue(MathAnswers.correct(AnswerKind.NUMBER, "The answer is 15.", "15.0"));
        assertTrue(MathAnswers.correct(AnswerKind.NUMBER, "about 1.8333", "1.8333333333333335"));
        assertFalse(MathAnswers.correct(AnswerKind.NUMBER, "about 1.83", "1.8333333333333335"));
        assertTrue(MathAnswers.correct(AnswerKind.NUMBER, "so 2,125 dollars", "2125"));
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', emptyValue = "", textBlock = """
            The answer is (D).                   | D
            Answer: (C)                          | A
            (B) 1000                             | B
            so it must be e) 12                  | ''
            Rationale: ... The answer is (E).    | E
            """)
    void firstCapitalAToEIsTheLetterAsTheirRegexFindsIt(String completion, String expected) {
        assertEquals(expected, MathAnswers.letter(completion));
    }

    @Test
    void lettersCompareExactly() {
        assertTrue(MathAnswers.correct(AnswerKind.LETTER, " (D) 2.65", "D"));
        assertFalse(MathAnswers.correct(AnswerKind.LETTER, "Clearly D", "D"), "C of 'Clearly' comes first");
        assertEquals("", MathAnswers.letter("none of these"));
    }

    @Test
    void theResponseEndsWhereTheModelStartsAnotherResponse() {
        assertEquals("The answer is 3.", MathAnswers.response("  The answer is 3.\n\n### Response:\n7"));
    }
}
