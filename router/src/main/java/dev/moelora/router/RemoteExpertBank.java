package dev.moelora.router;

import dev.moelora.model.moelora.ExpertBank;
import dev.moelora.model.optim.Parameter;
import dev.moelora.proto.wire.Direction;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A MoELoRA module's experts as the router sees them in the expert-parallel runtime: forward and
 * backward are dispatches over the data plane to the expert actors that own A_e and B_e. It holds
 * no expert parameter; the router thread waits here until every addressed expert has answered.
 */
final class RemoteExpertBank implements ExpertBank {
    private static final Pattern LAYER = Pattern.compile("\\.(?:layer|layers|h)\\.(\\d+)\\.");

    /** Which step and micro-batch the router is running: stamped on every frame. */
    static final class Position {
        long step;
        int micro;
    }

    private final RouterDataPlane plane;
    private final Position position;
    private final int module;
    private final int layer;
    private final String name;

    RemoteExpertBank(RouterDataPlane plane, Position position, int module, String name) {
        this.plane = plane;
        this.position = position;
        this.module = module;
        this.name = name;
        Matcher m = LAYER.matcher(name);
        this.layer = m.find() ? Integer.parseInt(m.group(1)) : -1;
    }

    @Override
    public List<Parameter> parameters() {
        return List.of();
    }

    @Override
    public void forward(INDArray xs, int[] offset, INDArray h) {
        plane.exchange(Direction.FORWARD_INPUT, position.step, position.micro, module, layer, name, xs, offset, h);
    }

    @Override
    public void backward(INDArray dh, int[] offset, INDArray dxs) {
        plane.exchange(Direction.BACKWARD_INPUT, position.step, position.micro, module, layer, name, dh, offset, dxs);
    }
}
