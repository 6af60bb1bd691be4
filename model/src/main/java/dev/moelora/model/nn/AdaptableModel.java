package dev.moelora.model.nn;

import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;

/** A model whose linear layers adapters can decorate, found by name. */
public interface AdaptableModel {
    /** Every linear layer of the trunk, in forward order. */
    List<Linear> linears();

    /** Puts {@code layer} where the module of the same name was. */
    void replace(Linear layer);

    DataType dataType();
}
