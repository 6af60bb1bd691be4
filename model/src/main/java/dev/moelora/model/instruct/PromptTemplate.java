package dev.moelora.model.instruct;

import dev.moelora.model.data.Instruction;

/**
 * The Alpaca prompt that LLM-Adapters fine-tunes and evaluates with: the instruction, the input
 * when there is one, then the response. It only builds text; it never tokenizes.
 *
 * <p>Source: AGI-Edgerunners/LLM-Adapters, {@code finetune.py} {@code generate_prompt(data_point)}
 * (training: the prompt followed by {@code output}) and {@code evaluate.py}
 * {@code generate_prompt(instruction, input)} (evaluation: the same prompt without the output). The
 * wording is theirs, which is Alpaca-LoRA's {@code templates/alpaca.json}. Their Python f-strings
 * also carry the source file's indentation into the text (16 spaces before every line after the
 * first, trailing spaces after "request.", and in finetune.py blank lines of 16 spaces), and the
 * training and evaluation strings differ in that whitespace; that is a formatting accident
 * ("sorry about the formatting disaster" in finetune.py), so this class writes the intended
 * template once, without the indentation, and uses the same text for training and evaluation.
 */
public final class PromptTemplate {
    /** Their evaluate.py keeps what follows the first occurrence of this in the decoded text. */
    public static final String RESPONSE_MARK = "### Response:";

    private static final String WITH_INPUT = "Below is an instruction that describes a task, paired with an input that provides further context. "
            + "Write a response that appropriately completes the request.\n\n### Instruction:\n";
    private static final String WITHOUT_INPUT = "Below is an instruction that describes a task. "
            + "Write a response that appropriately completes the request.\n\n### Instruction:\n";

    private PromptTemplate() {}

    /**
     * Everything before the response, ending in {@code "### Response:\n"}. The input section is there
     * when the input is not empty (Python's truthiness of {@code data_point["input"]}).
     */
    public static String prompt(String instruction, String input) {
        return input.isEmpty()
                ? WITHOUT_INPUT + instruction + "\n\n" + RESPONSE_MARK + "\n"
                : WITH_INPUT + instruction + "\n\n### Input:\n" + input + "\n\n" + RESPONSE_MARK + "\n";
    }

    public static String prompt(Instruction record) {
        return prompt(record.instruction(), record.input());
    }

    /** The training text: the prompt followed by the output. */
    public static String full(Instruction record) {
        return prompt(record) + record.output();
    }
}
