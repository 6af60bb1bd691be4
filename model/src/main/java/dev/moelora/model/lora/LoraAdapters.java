package dev.moelora.model.lora;

import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.optim.Parameter;
import java.util.List;
import java.util.Locale;

/** The LoRA modules applied to one model, seen as one adapter family. */
public final class LoraAdapters implements Adapters {
    private final LoraConfig config;
    private final List<LoraLinear> modules;

    public LoraAdapters(LoraConfig config, List<LoraLinear> modules) {
        this.config = config;
        this.modules = List.copyOf(modules);
    }

    public List<LoraLinear> modules() { return modules; }

    @Override
    public List<Parameter> parameters() {
        return Lora.parameters(modules);
    }

    @Override
    public void setTraining(boolean training) {
        for (LoraLinear l : modules) l.setTraining(training);
    }

    @Override
    public void reseed(long seed) {
        for (int i = 0; i < modules.size(); i++) modules.get(i).reseed(Adapters.moduleSeed(seed, i));
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "LoRA r=%d alpha=%s dropout=%s on %d modules %s", config.rank(),
                Adapters.number(config.alpha()), Adapters.number(config.dropout()), modules.size(), config.targets());
    }

}
