package dev.moelora.cluster.setup;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.model.adapter.Adapters;
import dev.moelora.model.lora.Lora;
import dev.moelora.model.lora.LoraConfig;
import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.moelora.MoeLoraConfig;
import dev.moelora.model.nn.AdaptableModel;
import dev.moelora.model.tiedlora.TiedLora;
import dev.moelora.model.tiedlora.TiedLoraConfig;

/** Builds the adapter family that {@code adapter.type} names, from the {@code adapter.*} keys. */
public final class AdapterFamily {
    private AdapterFamily() {}

    public static Adapters apply(RunConfig config, AdaptableModel model, long seed) {
        return apply(config, model, seed, MoeLora.LOCAL);
    }

    /** The {@code adapter.*} keys of a MoELoRA run. */
    public static MoeLoraConfig moeLora(RunConfig config) {
        return new MoeLoraConfig(config.integer("adapter.experts"), config.integer("adapter.top-k"),
                config.integer("adapter.expert-rank"), config.number("adapter.alpha"), config.number("adapter.dropout"),
                config.strings("adapter.targets"), config.number("adapter.balance-weight"), config.number("adapter.contrastive-weight"),
                config.number("adapter.temperature"), config.integer("adapter.max-features-per-expert"),
                config.number("adapter.capacity-factor"));
    }

    /** As {@link #apply(RunConfig, AdaptableModel, long)}, with MoELoRA's experts made by {@code banks}. */
    public static Adapters apply(RunConfig config, AdaptableModel model, long seed, MoeLora.BankFactory banks) {
        String type = config.string("adapter.type");
        return switch (type) {
            case "lora" -> Lora.adapters(model, new LoraConfig(config.integer("adapter.rank"), config.number("adapter.alpha"),
                    config.number("adapter.dropout"), config.strings("adapter.targets")), seed);
            case "tied-lora" -> TiedLora.apply(model, new TiedLoraConfig(config.string("adapter.preset"), config.integer("adapter.rank"),
                    config.number("adapter.alpha"), config.number("adapter.dropout"), config.strings("adapter.targets"),
                    config.bool("adapter.share-a-across-qkv")), seed);
            case "moelora" -> MoeLora.apply(model, moeLora(config), seed, banks);
            case "none" -> Adapters.NONE;
            default -> throw new IllegalArgumentException("adapter.type must be one of lora, tied-lora, moelora, none; got '" + type + "'");
        };
    }
}
