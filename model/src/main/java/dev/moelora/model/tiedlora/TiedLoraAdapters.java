package dev.moelora.model.tiedlora;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.optim.Parameter;
import java.util.List;
import java.util.Locale;

/**
 * The Tied-LoRA modules applied to one model, seen as one adapter family. Tied tensors are one
 * {@link Parameter} shared by the modules of every layer, listed once, so the optimizer keeps one
 * state for each. Frozen factors (VeRA's random A and B) are not parameters: they are rebuilt from
 * the seed, never saved.
 */
public final class TiedLoraAdapters implements Adapters {
    private final TiedLoraConfig config;
    private final List<TiedLoraLinear> modules;
    private final List<Parameter> parameters;

    TiedLoraAdapters(TiedLoraConfig config, List<TiedLoraLinear> modules, List<Parameter> parameters) {
        this.config = config;
        this.modules = List.copyOf(modules);
        this.parameters = List.copyOf(parameters);
    }

    List<TiedLoraLinear> modules() { return modules; }

    /** Every trained tensor once, in the order the modules first use them (A, B, u, v of each module in forward order). */
    @Override
    public List<Parameter> parameters() {
        return parameters;
    }


    @Override
    public void setTraining(boolean training) {
        for (TiedLoraLinear l : modules) l.setTraining(training);
    }

    @Override
    public void reseed(long seed) {
        for (int i = 0; i < modules.size(); i++) modules.get(i).reseed(Adapters.moduleSeed(seed, i));
    }

    @Override
    public String describe() {
        TiedLoraConfig.Components c = config.components();
        return String.format(Locale.ROOT,
                "Tied-LoRA %s r=%d alpha=%s dropout=%s on %d modules %s (A %s %s%s, B %s %s, u %s, v %s)",
                config.preset(), config.rank(), Adapters.number(config.alpha()), Adapters.number(config.dropout()), modules.size(), config.targets(),
                c.tieA() ? "tied" : "per layer", c.trainA() ? "trained" : "frozen", config.shareAcrossQkv() ? " shared by q,k,v" : "",
                c.tieB() ? "tied" : "per layer", c.trainB() ? "trained" : "frozen",
                c.trainU() ? "trained" : "1", c.trainV() ? "trained" : "1");
    }

}
