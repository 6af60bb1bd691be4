package dev.moelora.cluster.hub;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Optional;
import java.util.UUID;

/**
 * One repository's folder in huggingface_hub's cache, laid out exactly as its file_download.py
 * lays it out, so either tool reads what the other wrote:
 * <pre>
 * models--ORG--NAME/blobs/&lt;etag&gt;                      the content; etag = SHA-256 (LFS) or git blob SHA-1
 * models--ORG--NAME/blobs/&lt;etag&gt;.incomplete           a download in progress, resumed with Range
 * models--ORG--NAME/snapshots/&lt;commit&gt;/&lt;file&gt;        relative symlink to ../../blobs/&lt;etag&gt;
 * models--ORG--NAME/refs/&lt;revision&gt;                   the commit hash a branch or tag pointed to
 * .locks/models--ORG--NAME/&lt;etag&gt;.lock                held while a blob is written
 * </pre>
 * A blob is named by its own hash, so it is checked against its name wherever it is used (online
 * or offline); a blob whose content does not hash to its name never enters {@code blobs/}.
 */
final class HubCache {
    private final Path root, repo;
    private final String folder;

    HubCache(Path root, ModelName name) {
        this.root = root;
        this.folder = name.folder();
        this.repo = root.resolve(folder);
    }

    Path repoFolder() {
        return repo;
    }

    Path blob(String etag) {
        return repo.resolve("blobs").resolve(etag);
    }

    Path incomplete(String etag) {
        return repo.resolve("blobs").resolve(etag + ".incomplete");
    }

    Path snapshot(String commit) {
        return repo.resolve("snapshots").resolve(commit);
    }

    Path pointer(String commit, String file) {
        Path p = snapshot(commit).resolve(file).normalize();
        if (!p.startsWith(snapshot(commit)) || p.equals(snapshot(commit))) throw new IllegalArgumentException("file name '" + file + "' leaves the snapshot folder");
        return p;
    }

    /** The commit refs/&lt;revision&gt; holds, if a download wrote it. */
    Optional<String> ref(String revision) throws IOException {
        Path ref = refPath(revision);
        return Files.isRegularFile(ref) ? Optional.of(Files.readString(ref).strip()) : Optional.empty();
    }

    /** Writes refs/&lt;revision&gt; atomically (a reader never sees half a hash), only when it changes. */
    void writeRef(String revision, String commit) throws IOException {
        Path ref = refPath(revision);
        if (ref(revision).filter(commit::equals).isPresent()) return;
        Files.createDirectories(ref.getParent());
        Path tmp = ref.resolveSibling(ref.getFileName() + "." + UUID.randomUUID().toString().substring(0, 8) + ".tmp");
        Files.writeString(tmp, commit);
        Files.move(tmp, ref, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private Path refPath(String revision) {
        Path refs = repo.resolve("refs"), ref = refs.resolve(revision).normalize();
        if (!ref.startsWith(refs) || ref.equals(refs)) throw new IllegalArgumentException("revision '" + revision + "' leaves the refs folder");
        return ref;
    }

    /** snapshots/&lt;commit&gt;/&lt;file&gt; as a relative symlink to the blob (../../blobs/&lt;etag&gt;, one more ../ per folder in the file's name). */
    void link(String commit, String file, String etag) throws IOException {
        Path pointer = pointer(commit, file);
        Files.createDirectories(pointer.getParent());
        Files.deleteIfExists(pointer);
        Files.createSymbolicLink(pointer, pointer.getParent().relativize(blob(etag)));
    }

    /** The blob a snapshot entry links to, by its name in blobs/; empty for an entry that is a plain file (or missing). */
    Optional<String> linkedEtag(String commit, String file) throws IOException {
        Path pointer = pointer(commit, file);
        if (!Files.isSymbolicLink(pointer)) return Optional.empty();
        Path target = pointer.getParent().resolve(Files.readSymbolicLink(pointer)).normalize();
        return target.getParent().equals(repo.resolve("blobs")) ? Optional.of(target.getFileName().toString()) : Optional.empty();
    }

    boolean exists(String commit, String file) {
        return Files.exists(pointer(commit, file));
    }

    /**
     * Holds the cross-process lock of one blob, as huggingface_hub does (.locks/models--ORG--NAME/&lt;etag&gt;.lock),
     * so two processes sharing a cache never write the same .incomplete file at once.
     */
    Lock lock(String etag) throws IOException {
        Path lock = root.resolve(".locks").resolve(folder).resolve(etag + ".lock");
        Files.createDirectories(lock.getParent());
        FileChannel channel = FileChannel.open(lock, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        try {
            return new Lock(channel, channel.lock());
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    record Lock(FileChannel channel, FileLock lock) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            try (channel) {
                lock.release();
            }
        }
    }

    /** What a file must be: its size (when known) and its etag, a SHA-256 (LFS files) or the git blob SHA-1 (regular files). */
    record Expected(long size, String etag) {
        static final long UNKNOWN = -1;

        Expected {
            if (!Hash.of(etag).isPresent()) throw new IllegalArgumentException("etag '" + etag + "' is neither a SHA-256 nor a git SHA-1");
        }

        Hash hash() {
            return Hash.of(etag).orElseThrow();
        }
    }

    /** How an etag hashes the content: 64 hex digits are the SHA-256 of the content, 40 the SHA-1 of "blob &lt;size&gt;\0" + content. */
    enum Hash {
        SHA256, GIT_SHA1;

        static Optional<Hash> of(String etag) {
            if (!etag.matches("[0-9a-f]+")) return Optional.empty();
            return etag.length() == 64 ? Optional.of(SHA256) : etag.length() == 40 ? Optional.of(GIT_SHA1) : Optional.empty();
        }

        String label() {
            return this == SHA256 ? "SHA-256" : "git blob SHA-1";
        }

        /** The hash of a file's content, read once. */
        String of(Path file) throws IOException {
            MessageDigest md;
            try {
                md = MessageDigest.getInstance(this == SHA256 ? "SHA-256" : "SHA-1");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
            if (this == GIT_SHA1) md.update(("blob " + Files.size(file) + "\0").getBytes(StandardCharsets.US_ASCII));
            byte[] buf = new byte[1 << 16];
            try (InputStream in = Files.newInputStream(file)) {
                for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        }
    }

    /**
     * Why {@code file} is not the content {@code expected} names, or empty when it is: the size
     * first (free; a truncated blob never gets hashed), then the hash over the whole file.
     */
    static Optional<String> mismatch(Path file, Expected expected) throws IOException {
        long size = Files.size(file);
        if (expected.size() != Expected.UNKNOWN && size != expected.size()) {
            return Optional.of("expected " + expected.size() + " bytes, found " + size);
        }
        String found = expected.hash().of(file);
        return found.equals(expected.etag()) ? Optional.empty() : Optional.of("expected " + expected.hash().label() + " " + expected.etag() + ", found " + found);
    }
}
