package dev.moelora.model.moelora;

import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.nn.Init;
import dev.moelora.model.nn.Linear;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Puts a MoELoRA on every module of a model that the config's targets match. Per module, from one
 * seeded stream, in forward order: the gate W_g (E, dIn) ~ N(0, 0.02^2) (not zeros: a zero gate
 * gives every token the same p, so top-k ties send every token to experts 0..k-1), then for each
 * expert A_e (r_e, dIn) ~ U(-1/sqrt(dIn), 1/sqrt(dIn)) as LoRA's Kaiming-uniform, B_e (dOut, r_e)
 * = 0 so that step 0 equals the base model, then the seed of the module's own random streams.
 */
public final class MoeLora {
    static final double GATE_STD = 0.02;

    private MoeLora() {}

    /** Wraps the matching modules in place; fails, listing module names, when no module matches. */
    public static MoeLoraAdapters apply(AdaptableModel model, MoeLoraConfig config, long seed) {
        List<Linear> targets = model.linears().stream().filter(l -> config.matches(l.name())).toList();
        if (targets.isEmpty()) {
            List<String> names = model.linears().stream().map(Linear::name).toList();
            throw new IllegalArgumentException("adapter.targets " + config.targets() + " match no module; the model has "
                    + names.subList(0, Math.min(8, names.size())) + (names.size() > 8 ? " ..." : ""));
        }
        SplittableRandom random = new SplittableRandom(seed);
        DataType dt = model.dataType();
        List<MoeLoraLinear> modules = new ArrayList<>();
        for (Linear layer : targets) {
            INDArray gate = Init.normal(random, dt, GATE_STD, config.experts(), layer.dIn());
            INDArray[] a = new INDArray[config.experts()], b = new INDArray[config.experts()];
            for (int e = 0; e < config.experts(); e++) {
                a[e] = Init.uniform(random, dt, 1.0 / Math.sqrt(layer.dIn()), config.expertRank(), layer.dIn());
                b[e] = Nd4j.zeros(dt, layer.dOut(), config.expertRank());
            }
            MoeLoraLinear module = new MoeLoraLinear(layer, gate, a, b, config, 1.0 / targets.size(), random.nextLong());
            model.replace(module);
            modules.add(module);
        }
        return new MoeLoraAdapters(config, modules);
    }
}
