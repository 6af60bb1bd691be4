package dev.moelora.cluster.cli;

import dev.moelora.cluster.hub.HubModels;
import dev.moelora.cluster.setup.DecoderCheckpoint;
import dev.moelora.cluster.setup.SavedAdapter;
import dev.moelora.model.llama.LlamaDecoder;
import dev.moelora.model.llama.MergedCheckpoint;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Folds a LoRA or Tied-LoRA adapter into a LLaMA checkpoint's weights and writes the result as a
 * Hugging Face checkpoint directory ({@link MergedCheckpoint}). MoELoRA is refused before anything
 * is written: its mixture depends on the token.
 */
@Command(name = "merge", mixinStandardHelpOptions = true,
        description = {"Fold a LoRA or Tied-LoRA adapter into a LLaMA checkpoint and write a Hugging Face checkpoint directory:",
                "W' = W + s B A (Tied-LoRA: W + s diag(v) B diag(u) A) in the base's dtype, same tensor names, shapes and files;",
                "config.json and the tokenizer files copied. MoELoRA cannot be folded (its mixture depends on the token)."})
public final class MergeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "LLaMA checkpoint directory, or hf:ORG/NAME[@REVISION] from the Hugging Face Hub")
    String model;

    @Option(names = "--adapter", required = true, description = "adapter directory (adapter_config.json, adapter_model.safetensors)")
    Path adapter;

    @Option(names = "--out", required = true, description = "where to write the merged checkpoint: a new or empty directory")
    Path out;

    @Override
    public Integer call() throws Exception {
        Path model = HubModels.resolve(this.model);
        if (!DecoderCheckpoint.isCheckpoint(model)) throw new IllegalArgumentException("--model " + model + ": not a directory with config.json");
        String family = SavedAdapter.settings(adapter).string("adapter.type");
        if (family.equals("moelora")) {
            throw new IllegalArgumentException(adapter + ": a MoELoRA adapter cannot be merged into the base weights: each token's router "
                    + "picks its own experts, so the adapter is a different matrix for every token and no single W' equals it. "
                    + "Use it as it is: generate/forward/evaluate --model " + model + " --adapter " + adapter);
        }
        if (family.equals("none")) throw new IllegalArgumentException(adapter + ": adapts nothing (moelora_type NONE): there is nothing to merge");
        LlamaDecoder decoder = DecoderCheckpoint.decoder(model);
        SavedAdapter.Loaded loaded = SavedAdapter.load(adapter, decoder);
        MergedCheckpoint.Written w = MergedCheckpoint.write(model, decoder, out);
        System.out.printf("merged %s (%s) into %d tensors of %s -> %s%n  weights: %s%n  copied : %s%n", adapter, loaded.adapters().describe(),
                w.mergedTensors().size(), model, out, w.weightFiles(), w.copied());
        if (!w.skipped().isEmpty()) System.out.println("  not copied (other weights or directories): " + w.skipped());
        return 0;
    }
}
