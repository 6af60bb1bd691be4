package dev.moelora.model.moelora;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.optim.Parameter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The MoELoRA modules applied to one model, seen as one adapter family: their parameters, modes,
 * random streams, auxiliary losses and routing statistics. Module i's streams restart from
 * {@code seed * 8191 + i} at each {@link #reseed}, as LoRA's do.
 */
public final class MoeLoraAdapters implements Adapters {
    private final MoeLoraConfig config;
    private final List<MoeLoraLinear> modules;

    MoeLoraAdapters(MoeLoraConfig config, List<MoeLoraLinear> modules) {
        this.config = config;
        this.modules = List.copyOf(modules);
    }

    List<MoeLoraLinear> modules() { return modules; }

    public MoeLoraConfig config() { return config; }

    /**
     * Per module, in forward order: gate, then A_e and B_e of each expert in index order, as far
     * as they live in this process (in the expert-parallel runtime only the gates do).
     */
    @Override
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>();
        for (MoeLoraLinear m : modules) {
            out.add(m.gate());
            out.addAll(m.bank().parameters());
        }
        return out;
    }

    /**
     * Every trainable scalar of the single-process layout, wherever the tensors live: per module
     * the gate (E dIn) and the experts (E r_e (dIn + dOut)). In the expert-parallel runtime the
     * experts are in expert actors, yet they are this adapter's parameters all the same.
     */
    @Override
    public long trainableParameters() {
        long n = 0;
        for (MoeLoraLinear m : modules) n += (long) config.experts() * (m.dIn() + (long) config.expertRank() * (m.dIn() + m.dOut()));
        return n;
    }

    /** Every adapted module's name and shape, in forward order. */
    public List<MoeLora.ModuleShape> shapes() {
        return modules.stream().map(m -> new MoeLora.ModuleShape(m.name(), m.dIn(), m.dOut())).toList();
    }

    /**
     * The names of every trainable tensor of the single-process layout, in its order (per module:
     * gate, then A_e and B_e per expert), wherever the tensors live.
     */
    public List<String> parameterNames() {
        List<String> out = new ArrayList<>();
        for (MoeLoraLinear m : modules) {
            out.add(m.gate().name());
            for (int e = 0; e < config.experts(); e++) {
                out.add(MoeLora.aName(m.name(), e));
                out.add(MoeLora.bName(m.name(), e));
            }
        }
        return out;
    }

    /** The gates alone, in forward order: what a router of the expert-parallel runtime trains. */
    public List<Parameter> gates() {
        return modules.stream().map(MoeLoraLinear::gate).toList();
    }


    @Override
    public void setTraining(boolean training) {
        for (MoeLoraLinear m : modules) m.setTraining(training);
    }

    @Override
    public void reseed(long seed) {
        for (int i = 0; i < modules.size(); i++) modules.get(i).reseed(Adapters.moduleSeed(seed, i));
    }

    @Override
    public void setRowMask(float[] mask) {
        for (MoeLoraLinear m : modules) m.setRowMask(mask);
    }

    @Override
    public void setAuxiliaryLossScale(double scale) {
        for (MoeLoraLinear m : modules) m.setAuxiliaryLossScale(scale);
    }

    @Override
    public double takeAuxiliaryLoss() {
        double sum = 0;
        for (MoeLoraLinear m : modules) sum += m.takeAuxiliaryLoss();
        return sum;
    }

    /** Each module's routing in its last forward, in forward order. */
    public List<RoutingStats> stats() {
        return modules.stream().map(MoeLoraLinear::stats).toList();
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "MoELoRA E=%d top-%d r_e=%d alpha=%s dropout=%s lambda_bal=%s lambda_cl=%s tau=%s M=%d on %d modules %s",
                config.experts(), config.topK(), config.expertRank(), num(config.alpha()), num(config.dropout()),
                num(config.balanceWeight()), num(config.contrastiveWeight()), num(config.temperature()),
                config.maxFeaturesPerExpert(), modules.size(), config.targets())
                + (config.capacityFactor() > 0 ? " capacity-factor=" + num(config.capacityFactor()) : "");
    }

    private static String num(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }
}
