package dev.moelora.model.tiedlora;

import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.nn.Init;
import dev.moelora.model.nn.Linear;
import dev.moelora.model.optim.Parameter;
import dev.moelora.model.tiedlora.TiedLoraLinear.Factor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.regex.Pattern;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Puts a Tied-LoRA on every module of a model that the config's targets match, creating each
 * tied tensor once per module type (or per q/k/v group) and handing the same tensor to every
 * module that uses it.
 */
public final class TiedLora {
    private TiedLora() {}

    /** {@code layer.<n>.} or {@code layers.<n>.}, the layer index of BERT and LLaMA module names. */
    private static final Pattern LAYER_INDEX = Pattern.compile("(^|\\.)(layers?)\\.\\d+\\.");
    private static final Set<String> QKV = Set.of("query", "key", "value");
    private static final Set<String> QKV_PROJ = Set.of("q_proj", "k_proj", "v_proj");

    /**
     * Wraps the matching modules in place. Fails, listing the model's module names, when no
     * module matches: a typo in the targets must not silently train nothing.
     */
    public static TiedLoraAdapters apply(AdaptableModel model, TiedLoraConfig config, long seed) {
        TiedLoraConfig.Components c = config.components();
        SplittableRandom random = new SplittableRandom(seed);
        DataType dtype = model.dataType();
        int r = config.rank();
        Map<String, Factor> as = new LinkedHashMap<>(), bs = new LinkedHashMap<>();
        List<Parameter> parameters = new ArrayList<>();
        List<TiedLoraLinear> modules = new ArrayList<>();
        for (Linear layer : model.linears()) {
            if (!config.matches(layer.name())) continue;
            String aName = factorOwner(layer.name(), c.tieA(), config.shareAcrossQkv()) + ".tied_lora_A";
            String bName = factorOwner(layer.name(), c.tieB(), false) + ".tied_lora_B";
            Factor a = as.get(aName);
            if (a == null) {
                INDArray init = Init.uniform(random, dtype, 1.0 / Math.sqrt(layer.dIn()), r, layer.dIn());
                a = newFactor(aName, init, c.trainA(), parameters);
                as.put(aName, a);
            }
            Factor b = bs.get(bName);
            if (b == null) {
                INDArray init = c.trainB() ? Nd4j.zeros(dtype, layer.dOut(), r)
                        : Init.uniform(random, dtype, 1.0 / Math.sqrt(r), layer.dOut(), r);
                b = newFactor(bName, init, c.trainB(), parameters);
                bs.put(bName, b);
            }
            requireShape(aName, a, r, layer.dIn(), layer);
            requireShape(bName, b, layer.dOut(), r, layer);
            Parameter u = c.trainU() ? vector(layer.name() + ".tied_lora_u", dtype, r, c.uInit(), parameters) : null;
            Parameter v = c.trainV() ? vector(layer.name() + ".tied_lora_v", dtype, layer.dOut(), c.vInit(), parameters) : null;
            TiedLoraLinear adapter = new TiedLoraLinear(layer, a, b, u, v, config.scale(), config.dropout(), random.nextLong());
            model.replace(adapter);
            modules.add(adapter);
        }
        if (modules.isEmpty()) {
            List<String> names = model.linears().stream().map(Linear::name).toList();
            throw new IllegalArgumentException("adapter.targets " + config.targets() + " match no module; the model has "
                    + names.subList(0, Math.min(8, names.size())) + (names.size() > 8 ? " ..." : ""));
        }
        return new TiedLoraAdapters(config, modules, parameters);
    }

    /**
     * The module type: the name with its layer index replaced by {@code *}, e.g.
     * {@code encoder.layer.3.attention.self.query -> encoder.layer.*.attention.self.query},
     * {@code model.layers.3.self_attn.q_proj -> model.layers.*.self_attn.q_proj}. A name without
     * a layer index is its own type.
     */
    static String moduleType(String name) {
        return LAYER_INDEX.matcher(name).replaceFirst("$1$2.*.");
    }

    /**
     * Whose factor a module uses, as the prefix of the factor's name: the module itself, its
     * module type when tied, and with q/k/v sharing the {@code qkv} (or {@code qkv_proj}) group
     * in place of the last name component.
     */
    static String factorOwner(String name, boolean tied, boolean shareAcrossQkv) {
        String owner = tied ? moduleType(name) : name;
        if (!shareAcrossQkv) return owner;
        int dot = owner.lastIndexOf('.');
        String last = owner.substring(dot + 1), parent = owner.substring(0, dot + 1);
        if (QKV.contains(last)) return parent + "qkv";
        if (QKV_PROJ.contains(last)) return parent + "qkv_proj";
        return owner;
    }

    private static Factor newFactor(String name, INDArray init, boolean trained, List<Parameter> parameters) {
        if (!trained) return Factor.frozen(init);
        Parameter p = new Parameter(name, init);
        parameters.add(p);
        return Factor.of(p);
    }

    private static Parameter vector(String name, DataType dtype, long length, double init, List<Parameter> parameters) {
        Parameter p = new Parameter(name, Nd4j.valueArrayOf(new long[] {length}, init, dtype));
        parameters.add(p);
        return p;
    }

    /** A tied tensor serves modules of one shape only; a model whose same-type modules differ cannot tie them. */
    private static void requireShape(String name, Factor f, long rows, long cols, Linear layer) {
        if (f.value().size(0) != rows || f.value().size(1) != cols) {
            throw new IllegalArgumentException(name + " is " + Arrays.toString(f.value().shape()) + " but "
                    + layer.name() + " (" + layer.dOut() + " x " + layer.dIn() + ") needs (" + rows + ", " + cols + ")");
        }
    }
}
