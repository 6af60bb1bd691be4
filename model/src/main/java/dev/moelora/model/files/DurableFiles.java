package dev.moelora.model.files;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Files that are either there whole or not at all, also across a power cut: written under a
 * temporary name in the same directory, forced to disk, renamed over the target in one step, and
 * the directory forced too (a rename lives in the directory, not in the file). Never leaves a
 * temporary file behind on failure.
 */
public final class DurableFiles {
    private DurableFiles() {}

    /** What goes into a file: written to the channel of its temporary copy. */
    @FunctionalInterface
    public interface Content {
        void writeTo(FileChannel out) throws IOException;
    }

    /** Writes {@code bytes} as {@code file}, replacing it atomically when it exists. */
    public static void write(Path file, byte[] bytes) throws IOException {
        write(file, out -> {
            ByteBuffer buffer = ByteBuffer.wrap(bytes);
            while (buffer.hasRemaining()) out.write(buffer);
        });
    }

    /**
     * Writes {@code content} as {@code file}: into a temporary file beside it, forced to disk,
     * atomically renamed over {@code file}, the directory forced. A crash leaves the old file or
     * the new one, never a mix; a failure removes the temporary file and leaves {@code file} as it was.
     */
    public static void write(Path file, Content content) throws IOException {
        Path target = file.toAbsolutePath();
        Path temp = target.resolveSibling("." + target.getFileName() + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
        try {
            try (FileChannel out = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                content.writeTo(out);
                out.force(true);
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
        syncDirectory(target.getParent());
    }

    /** Forces a directory's entries (creations, renames, deletions) to disk. */
    public static void syncDirectory(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }
}
