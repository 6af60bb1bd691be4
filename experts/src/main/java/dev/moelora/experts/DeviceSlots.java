package dev.moelora.experts;

import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Binds the calling thread to a device slot. On the CUDA backend a slot is a GPU: the thread is
 * attached to it through ND4J's affinity manager, so everything the expert allocates lives there.
 * On the CPU backend there is one physical device; slots are logical (they name which expert
 * thread is which and are printed in the placement), and binding checks the slot and does nothing
 * else. It never moves memory that already exists.
 */
public final class DeviceSlots {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceSlots.class);

    private DeviceSlots() {}

    /** Physical devices ND4J sees: GPUs on CUDA, 1 on the CPU backend. */
    public static int physical() {
        return Nd4j.getAffinityManager().getNumberOfDevices();
    }

    /** "cuda" or "cpu", from the backend ND4J loaded. */
    public static String kind() {
        return Nd4j.getBackend().getClass().getSimpleName().toLowerCase(java.util.Locale.ROOT).contains("cuda") ? "cuda" : "cpu";
    }

    /** Attaches the current thread to {@code slot} (CUDA), or checks it is a valid logical slot (CPU). */
    public static void bind(int slot) {
        if (slot < 0) throw new IllegalArgumentException("device slot must be >= 0, got " + slot);
        if (kind().equals("cuda")) {
            int devices = physical();
            if (slot >= devices) throw new IllegalArgumentException("device slot " + slot + " but this node has " + devices + " GPUs");
            Nd4j.getAffinityManager().unsafeSetDevice(slot);
            LOG.info("thread {} attached to GPU {}", Thread.currentThread().getName(), slot);
        }
    }
}
