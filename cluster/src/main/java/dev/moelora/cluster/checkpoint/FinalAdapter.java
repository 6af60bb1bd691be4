package dev.moelora.cluster.checkpoint;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moelora.model.checkpoint.FileDigest;
import dev.moelora.model.checkpoint.StateFile;
import dev.moelora.model.train.AdapterStore;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A run's deliverable, {@code <run dir>/adapter/}, in PEFT's layout whatever the family:
 * adapter_model.safetensors (every trainable tensor of the checkpoint's state files under its
 * single-process name, LoRA under PEFT's keys) and adapter_config.json. Made from a checkpoint, so a single-process run and the expert-parallel
 * runtime, whose tensors live on several nodes, write the same files from the same state.
 */
public final class FinalAdapter {
    private FinalAdapter() {}

    /** Writes the adapter of {@code checkpoint} into {@code adapterDir}; every state file is verified first. Returns the tensor file. */
    public static Path write(CheckpointStore.Loaded checkpoint, Path adapterDir, ObjectNode adapterConfig) throws IOException {
        Map<String, INDArray> tensors = new TreeMap<>();
        for (FileDigest f : checkpoint.files()) {
            for (Map.Entry<String, INDArray> e : StateFile.readParameters(checkpoint.dir().resolve(f.name()), f).entrySet()) {
                if (tensors.put(e.getKey(), e.getValue()) != null) {
                    throw new IOException(checkpoint.dir() + ": tensor '" + e.getKey() + "' is in two state files (the second: " + f.name() + ")");
                }
            }
        }
        AdapterStore.write(adapterDir, tensors, adapterConfig, checkpoint.step());
        return adapterDir.resolve(AdapterStore.ADAPTER);
    }
}
