package dev.moelora.model.nn;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A model's linear layers held as blocks (one array per transformer layer), found and replaced
 * by name: what {@link AdaptableModel} needs, written once for every model. It never changes a
 * layer's shape: a replacement must have the dimensions of the layer it replaces.
 */
public final class LinearBlocks {
    private LinearBlocks() {}

    /** Every layer, block by block, in forward order. */
    public static List<Linear> list(Linear[][] blocks) {
        List<Linear> out = new ArrayList<>();
        for (Linear[] block : blocks) out.addAll(Arrays.asList(block));
        return out;
    }

    /** Puts {@code layer} where the layer of the same name was; fails for an unknown name or other dimensions. */
    public static void replace(Linear[][] blocks, Linear layer) {
        for (Linear[] block : blocks) {
            for (int m = 0; m < block.length; m++) {
                if (block[m].name().equals(layer.name())) {
                    if (block[m].dIn() != layer.dIn() || block[m].dOut() != layer.dOut()) {
                        throw new IllegalArgumentException(layer.name() + ": replacement has other dimensions");
                    }
                    block[m] = layer;
                    return;
                }
            }
        }
        throw new IllegalArgumentException("no module named '" + layer.name() + "'");
    }
}
