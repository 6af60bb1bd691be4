package dev.moelora.model.nn;

/**
 * Whether the fused kernels take {@link FloatLanes} (the incubating Vector API) for FLOAT tensors:
 * only when asked with {@code -Dmoelora.vector-kernels=true} and the JVM resolved the module
 * jdk.incubator.vector (the launcher, the node processes and the tests start every JVM with
 * {@code --add-modules jdk.incubator.vector}). Off by default because it is not deterministic: the
 * API's exp and lane sums give different last bits before and after the JIT compiles a loop, so
 * two JVMs (or one run before and after a resume) can differ, which the runtime's bit-identity
 * tests caught. Otherwise the kernels take their scalar double path, the reference the lanes are
 * tested against. This class must never touch a Vector API type, so that it loads either way.
 */
public final class VectorApi {
    /** True when {@link FloatLanes} may be called. */
    public static final boolean PRESENT = Boolean.getBoolean("moelora.vector-kernels")
            && ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    private VectorApi() {}
}
