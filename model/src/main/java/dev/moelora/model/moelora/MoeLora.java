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
 * The expert-parallel runtime draws the same tensors from the same rule ({@link #initialise}), so
 * an expert placed on another machine starts from exactly the values it would have here.
 */
public final class MoeLora {
    static final double GATE_STD = 0.02;

    private MoeLora() {}

    /** What an adapted module looks like to an expert: its name and shape. */
    public record ModuleShape(String name, long dIn, long dOut) {}

    /** One module's initial tensors: gate (E, dIn), A_e (r_e, dIn), B_e (dOut, r_e), and its stream seed. */
    public record ModuleInit(ModuleShape shape, INDArray gate, INDArray[] a, INDArray[] b, long streamSeed) {}

    /** The name of expert e's A in module {@code module}: the same in every process and in saved adapters. */
    public static String aName(String module, int e) {
        return module + ".moe_A." + e;
    }

    /** The name of expert e's B in module {@code module}. */
    public static String bName(String module, int e) {
        return module + ".moe_B." + e;
    }

    /** Builds the experts of one module; the runtime's factory dispatches to expert actors instead. */
    @FunctionalInterface
    public interface BankFactory {
        ExpertBank create(int moduleIndex, ModuleInit init, MoeLoraConfig config);
    }

    /** The experts live in the module's process: the single-process reference. */
    public static final BankFactory LOCAL = (i, init, config) -> new LocalExpertBank(init.shape().name(), init.a(), init.b(), config.scale());

    /** The modules of {@code model} that {@code config} adapts, in forward order; fails, listing module names, when none match. */
    public static List<ModuleShape> targets(AdaptableModel model, MoeLoraConfig config) {
        List<ModuleShape> targets = model.linears().stream().filter(l -> config.matches(l.name()))
                .map(l -> new ModuleShape(l.name(), l.dIn(), l.dOut())).toList();
        if (targets.isEmpty()) {
            List<String> names = model.linears().stream().map(Linear::name).toList();
            throw new IllegalArgumentException("adapter.targets " + config.targets() + " match no module; the model has "
                    + names.subList(0, Math.min(8, names.size())) + (names.size() > 8 ? " ..." : ""));
        }
        return targets;
    }

    /** Every module's initial tensors, drawn in forward order from one stream seeded {@code seed}. */
    public static List<ModuleInit> initialise(List<ModuleShape> modules, MoeLoraConfig config, long seed, DataType dt) {
        SplittableRandom random = new SplittableRandom(seed);
        List<ModuleInit> out = new ArrayList<>();
        for (ModuleShape m : modules) {
            INDArray gate = Init.normal(random, dt, GATE_STD, config.experts(), m.dIn());
            INDArray[] a = new INDArray[config.experts()], b = new INDArray[config.experts()];
            for (int e = 0; e < config.experts(); e++) {
                a[e] = Init.uniform(random, dt, 1.0 / Math.sqrt(m.dIn()), config.expertRank(), m.dIn());
                b[e] = Nd4j.zeros(dt, m.dOut(), config.expertRank());
            }
            out.add(new ModuleInit(m, gate, a, b, random.nextLong()));
        }
        return out;
    }

    /** Wraps the matching modules in place, with their experts in this process. */
    public static MoeLoraAdapters apply(AdaptableModel model, MoeLoraConfig config, long seed) {
        return apply(model, config, seed, LOCAL);
    }

    /** Wraps the matching modules in place, with experts made by {@code banks}. */
    public static MoeLoraAdapters apply(AdaptableModel model, MoeLoraConfig config, long seed, BankFactory banks) {
        List<ModuleShape> targets = targets(model, config);
        List<ModuleInit> inits = initialise(targets, config, seed, model.dataType());
        List<MoeLoraLinear> modules = new ArrayList<>();
        for (int i = 0; i < inits.size(); i++) {
            ModuleInit init = inits.get(i);
            Linear layer = model.linears().stream().filter(l -> l.name().equals(init.shape().name())).findFirst().orElseThrow();
            MoeLoraLinear module = new MoeLoraLinear(layer, init.gate(), banks.create(i, init, config), config,
                    1.0 / targets.size(), init.streamSeed());
            model.replace(module);
            modules.add(module);
        }
        return new MoeLoraAdapters(config, modules);
    }
}
