package dev.moelora.model.checkpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * What a checkpoint knows of one of its files before reading it: its name in the step directory,
 * its size in bytes and its SHA-256 (lowercase hex). A file is used only after it matches both.
 */
public record FileDigest(String name, long size, String sha256) {
    private static final int BUFFER = 1 << 20;

    /** The digest of {@code file} as it is on disk now, named by its file name. */
    public static FileDigest of(Path file) throws IOException {
        return new FileDigest(file.getFileName().toString(), Files.size(file), sha256(file));
    }

    /**
     * Checks that {@code file} is this file: present, {@link #size} bytes long, with this SHA-256.
     * The message of a mismatch names the file, the expected and the actual size or hash.
     */
    public void verify(Path file) throws IOException {
        long actual;
        try {
            actual = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": missing (expected " + size + " bytes, SHA-256 " + sha256 + ")", e);
        }
        if (actual != size) {
            throw new IOException(file + ": " + actual + " bytes, expected " + size + " bytes (truncated or overwritten?)");
        }
        String hash = sha256(file);
        if (!hash.equals(sha256)) {
            throw new IOException(file + ": SHA-256 " + hash + ", expected " + sha256 + " (the file changed after it was written)");
        }
    }

    static String sha256(Path file) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
        byte[] buffer = new byte[BUFFER];
        try (InputStream in = Files.newInputStream(file)) {
            for (int n; (n = in.read(buffer)) > 0; ) digest.update(buffer, 0, n);
        }
        return HexFormat.of().formatHex(digest.digest());
    }
}
