package dev.moelora.model.data;

/**
 * One instruction-tuning record as LLM-Adapters and Alpaca write them. Never null fields: an absent
 * {@code input}, {@code output} or {@code answer} is the empty string.
 *
 * @param instruction the task, always non-blank
 * @param input       further context; empty for every math and commonsense record of LLM-Adapters
 * @param output      the response a model is trained to write (a rationale ending in the answer)
 * @param answer      the gold answer alone, as evaluation compares it ("4", "15.0", "A"); empty when
 *                    the file gives none
 */
public record Instruction(String instruction, String input, String output, String answer) {
    public Instruction {
        if (instruction == null || input == null || output == null || answer == null) {
            throw new IllegalArgumentException("an instruction record has no null fields; absent ones are \"\"");
        }
    }
}
