package dev.moelora.model.nn;

/**
 * Whether this JVM resolved the incubating Vector API module (jdk.incubator.vector), which
 * {@link FloatLanes} needs: the launcher, the node processes and the tests start every JVM with
 * {@code --add-modules jdk.incubator.vector}. When it is absent (a JVM started without the flag),
 * the kernels take their scalar double path, which is the reference the lanes are tested against.
 * This class must never touch a Vector API type, so that it loads either way.
 */
public final class VectorApi {
    /** True when {@link FloatLanes} may be called. */
    public static final boolean PRESENT = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !Boolean.getBoolean("moelora.scalar-kernels");

    private VectorApi() {}
}
