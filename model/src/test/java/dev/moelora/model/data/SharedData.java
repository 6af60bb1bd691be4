package dev.moelora.model.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Finds the shared data directory (real datasets, downloaded weights) that lives next to the checkouts,
 * so tests and tools in any module and any worktree agree on one place.
 *
 * <p>Lookup: the system property {@value #PROPERTY} if set, else the first ancestor of the working
 * directory (itself included) that has a {@code shared/data} child; Surefire runs in the module
 * directory, so {@code /work/main/model} finds {@code /work/shared/data}. It only looks: it must never
 * create, download or modify anything there.
 */
public final class SharedData {

    /** System property naming the shared data directory explicitly. */
    public static final String PROPERTY = "moelora.shared.data";

    private SharedData() {
    }

    /**
     * The shared data directory, or empty when none is found (tests then skip).
     *
     * @throws IllegalStateException if {@value #PROPERTY} is set but names no directory: an explicit
     *     setting that is wrong is a mistake to report, not a reason to quietly skip tests
     */
    public static Optional<Path> root() {
        String configured = System.getProperty(PROPERTY);
        if (configured != null) {
            Path dir = Path.of(configured).toAbsolutePath().normalize();
            if (!Files.isDirectory(dir)) {
                throw new IllegalStateException("-D" + PROPERTY + "=" + configured + " is not a directory");
            }
            return Optional.of(dir);
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("shared").resolve("data");
            if (Files.isDirectory(candidate)) {
                return Optional.of(candidate.normalize());
            }
        }
        return Optional.empty();
    }
}
