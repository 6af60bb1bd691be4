package dev.moelora.model.moelora;

import dev.moelora.model.lora.LoraConfig;
import java.util.List;

/**
 * Which modules get a MoELoRA and how. Targets have PEFT's semantics, exactly as for LoRA (the
 * matching is {@link LoraConfig#matches}, not a copy of it).
 *
 * @param experts              E, experts per adapted module
 * @param topK                 k, experts each token is routed to, in [1, E]
 * @param expertRank           r_e, rank of each expert; r_e = r / E gives as many expert parameters as LoRA of rank r
 * @param alpha                each expert's scale is s_e = alpha / r_e
 * @param dropout              dropout on the experts' input during training, in [0, 1); the gate sees the clean input
 * @param targets              module names or {@code re:} patterns
 * @param balanceWeight        lambda_bal, weight of the Switch load-balancing loss, >= 0
 * @param contrastiveWeight    lambda_cl, weight of the supervised-contrastive loss, >= 0
 * @param temperature          tau of the contrastive loss, > 0
 * @param maxFeaturesPerExpert M, features sampled per expert per module per step for the contrastive loss, >= 2
 *                             (a feature needs another of its expert to have a positive)
 * @param capacityFactor       0: dropless (every token reaches its k experts); else c > 0, and in a training forward
 *                             each expert takes at most ceil(c k N_real / E) of a module's routed slots, the rest
 *                             dropped by lowest gate probability ({@link TopKRouter})
 */
public record MoeLoraConfig(int experts, int topK, int expertRank, double alpha, double dropout, List<String> targets,
                            double balanceWeight, double contrastiveWeight, double temperature, int maxFeaturesPerExpert,
                            double capacityFactor) {
    /** A dropless configuration. */
    public MoeLoraConfig(int experts, int topK, int expertRank, double alpha, double dropout, List<String> targets,
                         double balanceWeight, double contrastiveWeight, double temperature, int maxFeaturesPerExpert) {
        this(experts, topK, expertRank, alpha, dropout, targets, balanceWeight, contrastiveWeight, temperature, maxFeaturesPerExpert, 0);
    }

    public MoeLoraConfig {
        if (experts < 1) throw new IllegalArgumentException("adapter.experts must be >= 1, got " + experts);
        if (topK < 1 || topK > experts) {
            throw new IllegalArgumentException("adapter.top-k must be in [1, adapter.experts = " + experts + "], got " + topK);
        }
        if (expertRank < 1) throw new IllegalArgumentException("adapter.expert-rank must be >= 1, got " + expertRank);
        if (!(alpha > 0 && Double.isFinite(alpha))) throw new IllegalArgumentException("adapter.alpha must be a finite number > 0, got " + alpha);
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("adapter.dropout must be in [0, 1), got " + dropout);
        if (targets == null || targets.isEmpty()) throw new IllegalArgumentException("adapter.targets must name at least one module");
        targets = List.copyOf(targets);
        if (!(balanceWeight >= 0 && Double.isFinite(balanceWeight))) {
            throw new IllegalArgumentException("adapter.balance-weight must be a finite number >= 0, got " + balanceWeight);
        }
        if (!(contrastiveWeight >= 0 && Double.isFinite(contrastiveWeight))) {
            throw new IllegalArgumentException("adapter.contrastive-weight must be a finite number >= 0, got " + contrastiveWeight);
        }
        if (!(temperature > 0 && Double.isFinite(temperature))) {
            throw new IllegalArgumentException("adapter.temperature must be a finite number > 0, got " + temperature);
        }
        if (maxFeaturesPerExpert < 2) {
            throw new IllegalArgumentException("adapter.max-features-per-expert must be >= 2 (a feature needs a positive), got "
                    + maxFeaturesPerExpert);
        }
        if (!(capacityFactor >= 0 && Double.isFinite(capacityFactor))) {
            throw new IllegalArgumentException("adapter.capacity-factor must be 0 (dropless) or a finite number > 0, got " + capacityFactor);
        }
    }

    /** The same configuration with another capacity factor. */
    public MoeLoraConfig withCapacityFactor(double factor) {
        return new MoeLoraConfig(experts, topK, expertRank, alpha, dropout, targets, balanceWeight, contrastiveWeight, temperature,
                maxFeaturesPerExpert, factor);
    }

    /** E 8, top-2, r_e 1 (= r / E for r 8), alpha 16, dropout 0.05, lambda_bal 0.01, lambda_cl 0.1, tau 0.1, M 32. */
    public static MoeLoraConfig defaults(List<String> targets) {
        return new MoeLoraConfig(8, 2, 1, 16, 0.05, targets, 0.01, 0.1, 0.1, 32);
    }

    /** s_e = alpha / r_e, the same for every expert. */
    public double scale() {
        return alpha / expertRank;
    }

    public boolean matches(String moduleName) {
        return new LoraConfig(expertRank, alpha, dropout, targets).matches(moduleName);
    }
}
