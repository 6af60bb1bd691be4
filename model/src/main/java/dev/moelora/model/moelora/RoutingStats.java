package dev.moelora.model.moelora;

/**
 * What one MoELoRA module's router did in its last forward, over real tokens only (padding rows
 * are routed, so that every row of y is defined, but never counted).
 *
 * @param module           the adapted module's name
 * @param tokens           real tokens the module routed (each to top-k experts)
 * @param routedTokens     (E) real tokens routed to each expert; they sum to k times the real tokens
 * @param gateMass         (E) mean gate probability p_e over real tokens
 * @param gateEntropy      mean over real tokens of -sum_e p_e log p_e (nats)
 * @param balanceLoss      L_bal = E sum_e f_e P_e, unweighted
 * @param contrastiveLoss  L_cl, unweighted; NaN after an evaluation forward, which samples no features
 * @param meanOutputCosine (E, E) cosine between experts' mean outputs H over their routed real
 *                         tokens; 0 where either mean is the zero vector (e.g. at step 0, B = 0)
 *                         or the expert received no real token; over the tokens it kept
 * @param droppedTokens    real tokens' expert slots that the capacity dropped (a token dropped by
 *                         both its experts counts twice); always 0 when dropless, the default
 * routedTokens count the router's choice before any drop: kept slots per expert are routedTokens
 * less that expert's dropped ones.
 */
public record RoutingStats(String module, long tokens, long[] routedTokens, double[] gateMass, double gateEntropy,
                           double balanceLoss, double contrastiveLoss, double[][] meanOutputCosine, long droppedTokens) {}
