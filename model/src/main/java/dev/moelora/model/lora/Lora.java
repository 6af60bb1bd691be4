package dev.moelora.model.lora;

import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.nn.Init;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.optim.Parameter;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Puts a LoRA on every module of a model that the config's targets match. */
public final class Lora {
    private Lora() {}

    /**
     * Wraps the matching modules in place and returns their adapters in forward order. Fails,
     * listing the model's module names, when no module matches: a typo in the targets must not
     * silently train nothing.
     */
    public static List<LoraLinear> apply(AdaptableModel model, LoraConfig config, long seed) {
        List<LoraLinear> adapters = new ArrayList<>();
        SplittableRandom random = new SplittableRandom(seed);
        for (Linear layer : model.linears()) {
            if (!config.matches(layer.name())) continue;
            int r = config.rank();
            INDArray a = Init.uniform(random, model.dataType(), 1.0 / Math.sqrt(layer.dIn()), r, layer.dIn());
            INDArray b = Nd4j.zeros(model.dataType(), layer.dOut(), r);
            LoraLinear adapter = new LoraLinear(layer, a, b, config.scale(), config.dropout(), random.nextLong());
            model.replace(adapter);
            adapters.add(adapter);
        }
        if (adapters.isEmpty()) {
            List<String> names = model.linears().stream().map(Linear::name).toList();
            throw new IllegalArgumentException("adapter.targets " + config.targets() + " match no module; the model has "
                    + names.subList(0, Math.min(8, names.size())) + (names.size() > 8 ? " ..." : ""));
        }
        return adapters;
    }

    /** {@link #apply} as an adapter family. */
    public static LoraAdapters adapters(AdaptableModel model, LoraConfig config, long seed) {
        return new LoraAdapters(config, apply(model, config, seed));
    }

    /** The trainable tensors of the adapters: A then B of each, in forward order. */
    public static List<Parameter> parameters(List<LoraLinear> adapters) {
        List<Parameter> out = new ArrayList<>();
        for (LoraLinear l : adapters) {
            out.add(l.a());
            out.add(l.b());
        }
        return out;
    }
}
