package dev.moelora.cluster.cli;

import dev.moelora.cluster.hub.HubModels;
import dev.moelora.cluster.setup.DecoderCheckpoint;
import dev.moelora.cluster.setup.SavedAdapter;
import dev.moelora.model.instruct.PromptTemplate;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.Sampler;
import dev.moelora.model.tokenizer.BpeTokenizer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Continues a prompt with a LLaMA checkpoint, with a saved adapter or without, and prints the completion (the new text only). */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Continue a prompt with a LLaMA checkpoint directory (config.json, safetensors, tokenizer.json) and print the completion;",
                "with --adapter DIR, with that saved adapter on the model (any of moelora's families, or a LoRA PEFT saved).",
                "Greedy at temperature 0 (the default); otherwise sampled with temperature, top-k and top-p from --seed."})
public final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "LLaMA checkpoint directory, or hf:ORG/NAME[@REVISION] from the Hugging Face Hub")
    String model;

    @Option(names = "--adapter", description = "an adapter directory (adapter_config.json, adapter_model.safetensors) to put on the model")
    Path adapter;

    @Option(names = "--prompt", required = true, description = "the text to continue (BOS is added as the tokenizer's post-processor says)")
    String prompt;

    @Option(names = "--instruction", description = "wrap the prompt as an instruction in the LLM-Adapters (Alpaca) template first")
    boolean instruction;

    @Option(names = "--max-new-tokens", defaultValue = "64", description = "at most this many new tokens; stops earlier at end-of-sequence (default: ${DEFAULT-VALUE})")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 for greedy, > 0 to sample (default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "sample among the k most likely tokens; 0 = all (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--top-p", defaultValue = "1", description = "sample among the most likely tokens up to this probability mass (default: ${DEFAULT-VALUE})")
    double topP;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the sampling stream (default: ${DEFAULT-VALUE})")
    long seed;

    @Override
    public Integer call() throws Exception {
        Path model = HubModels.resolve(this.model);
        if (!DecoderCheckpoint.isCheckpoint(model)) throw new IllegalArgumentException("--model " + model + ": not a directory with config.json");
        BpeTokenizer tokenizer = DecoderCheckpoint.tokenizer(model);
        LlamaDecoder decoder = DecoderCheckpoint.decoder(model);
        if (adapter != null) SavedAdapter.load(adapter, decoder);
        String text = instruction ? PromptTemplate.prompt(prompt, "") : prompt;
        int[] ids = tokenizer.encode(text, true);
        if (ids.length == 0) throw new IllegalArgumentException("--prompt: the tokenizer gave no tokens");
        int room = decoder.config().maxPositions() - ids.length;
        if (room < 1) {
            throw new IllegalArgumentException("--prompt: " + ids.length + " tokens leave no room in the model's " + decoder.config().maxPositions() + " positions");
        }
        Sampler sampler = temperature == 0 ? Sampler.greedy() : Sampler.sampling(temperature, topK, topP, seed);
        int[] out = decoder.generate(ids, Math.min(maxNewTokens, room), sampler);
        System.out.println(tokenizer.decode(out, true));
        return 0;
    }
}
