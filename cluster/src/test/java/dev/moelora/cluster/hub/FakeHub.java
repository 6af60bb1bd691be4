package dev.moelora.cluster.hub;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A Hugging Face Hub on 127.0.0.1 for tests, answering as huggingface.co does (as huggingface_hub
 * reads it): {@code GET /api/models/REPO/revision/REV[?blobs=true]} and {@code /tree/REV}, and
 * {@code HEAD|GET /REPO/resolve/REV/FILE} with X-Repo-Commit and a weak ETag (the git blob SHA-1)
 * for regular files, and for LFS files (*.safetensors, *.bin, *.onnx) a 302 to a separate "CDN"
 * path with X-Linked-Etag (the SHA-256) and X-Linked-Size. The CDN is addressed as
 * {@code localhost}, another host name for the same server, so clients treat it as the Hub's
 * does: not the Hub, no token. Range requests are served (206); a gated repository answers 401
 * (no token) or 403 (another token) with X-Error-Code GatedRepo; unknown repos, revisions and
 * files answer with RepoNotFound, RevisionNotFound and EntryNotFound. It counts requests and the
 * bytes it sends, and can cut a download short or corrupt it, to test the client.
 */
final class FakeHub implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One file of a commit: its bytes, and whether git stores it through LFS. */
    record Blob(byte[] bytes, boolean lfs) {
        String sha256() {
            return hex("SHA-256", bytes);
        }

        /** The git blob SHA-1 of the file as git stores it: the content, or the LFS pointer. */
        String oid() {
            byte[] stored = lfs ? pointer() : bytes;
            byte[] header = ("blob " + stored.length + "\0").getBytes(StandardCharsets.US_ASCII);
            byte[] all = new byte[header.length + stored.length];
            System.arraycopy(header, 0, all, 0, header.length);
            System.arraycopy(stored, 0, all, header.length, stored.length);
            return hex("SHA-1", all);
        }

        byte[] pointer() {
            return ("version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256() + "\nsize " + bytes.length + "\n").getBytes(StandardCharsets.US_ASCII);
        }

        String etag() {
            return lfs ? sha256() : oid();
        }
    }

    static final class Repo {
        final String id;
        String token;
        final Map<String, String> refs = new LinkedHashMap<>();
        final Map<String, Map<String, Blob>> commits = new LinkedHashMap<>();

        Repo(String id) {
            this.id = id;
        }

        /** Adds a commit holding these files (path to bytes) and points the branch or tag {@code ref} at it; returns its hash. */
        String commit(String ref, Map<String, byte[]> files) {
            String hash = hex("SHA-1", (id + "@" + ref + "#" + commits.size()).getBytes(StandardCharsets.UTF_8));
            Map<String, Blob> blobs = new TreeMap<>();
            files.forEach((p, b) -> blobs.put(p, new Blob(b, p.matches(".*\\.(safetensors|bin|onnx|pth)$"))));
            commits.put(hash, blobs);
            refs.put(ref, hash);
            return hash;
        }

        String commitOf(String revision) {
            return commits.containsKey(revision) ? revision : refs.get(revision);
        }
    }

    record Request(String method, String path, String host, String range, String authorization) {}

    private final HttpServer server;
    private final ExecutorService pool = Executors.newCachedThreadPool();
    final Map<String, Repo> repos = new ConcurrentHashMap<>();
    final Map<String, String> renamed = new ConcurrentHashMap<>();
    final List<Request> requests = Collections.synchronizedList(new ArrayList<>());
    /** Body bytes sent, by the sha256 of the file (CDN) or repo/file (resolve). */
    final Map<String, AtomicLong> sent = new ConcurrentHashMap<>();
    /** The next GET of the file with this etag sends this many bytes, then breaks the connection. */
    final Map<String, Integer> cutAfter = new ConcurrentHashMap<>();
    /** The next GET of the file with this etag sends this many bytes, then stalls (sends nothing, keeps the connection) for 30 s. */
    final Map<String, Integer> stallAfter = new ConcurrentHashMap<>();
    /** The next n GETs of the file with this etag send it with one byte changed. */
    final Map<String, Integer> corrupt = new ConcurrentHashMap<>();
    /** Answer every Range request with the whole file (200), as a CDN that ignores Range does. */
    volatile boolean ignoreRange;
    /** Files the revision API lists but /resolve answers 404 EntryNotFound for. */
    final java.util.Set<String> vanished = ConcurrentHashMap.newKeySet();

    FakeHub() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.setExecutor(pool);
        server.start();
    }

    String endpoint() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private String cdn() {
        return "http://localhost:" + server.getAddress().getPort() + "/cdn/";
    }

    Repo repo(String id) {
        return repos.computeIfAbsent(id, Repo::new);
    }

    /** Files of a directory by name, read from it (the committed test checkpoints). */
    static Map<String, byte[]> files(Path dir, String... names) throws IOException {
        Map<String, byte[]> m = new LinkedHashMap<>();
        for (String n : names) m.put(n, Files.readAllBytes(dir.resolve(n)));
        return m;
    }

    List<Request> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    long sent(String key) {
        return sent.getOrDefault(key, new AtomicLong()).get();
    }

    /** Stops answering: the port is closed, connections are refused. */
    @Override
    public void close() {
        server.stop(0);
        pool.shutdownNow();
    }

    private void handle(HttpExchange x) throws IOException {
        try (x) {
            Headers h = x.getRequestHeaders();
            String path = x.getRequestURI().getRawPath();
            requests.add(new Request(x.getRequestMethod(), path + (x.getRequestURI().getRawQuery() == null ? "" : "?" + x.getRequestURI().getRawQuery()),
                    h.getFirst("Host"), h.getFirst("Range"), h.getFirst("Authorization")));
            if (path.startsWith("/cdn/")) {
                cdn(x, path.substring("/cdn/".length()));
                return;
            }
            boolean api = path.startsWith("/api/models/");
            List<String> seg = new ArrayList<>(List.of((api ? path.substring("/api/models/".length()) : path.substring(1)).split("/", -1)));
            if (seg.size() < 4) {
                error(x, 404, null, "Not found", null);
                return;
            }
            String id = seg.get(0) + "/" + seg.get(1), kind = seg.get(2), rev = URLDecoder.decode(seg.get(3), StandardCharsets.UTF_8);
            String rest = String.join("/", seg.subList(4, seg.size()));
            if (renamed.containsKey(id)) {
                x.getResponseHeaders().set("Location", path.replace("/" + id + "/", "/" + renamed.get(id) + "/")
                        + (x.getRequestURI().getRawQuery() == null ? "" : "?" + x.getRequestURI().getRawQuery()));
                x.sendResponseHeaders(307, -1);
                return;
            }
            Repo repo = repos.get(id);
            String auth = h.getFirst("Authorization");
            if (repo == null) {
                error(x, auth == null ? 401 : 404, "RepoNotFound", "Repository not found", null);
                return;
            }
            if (repo.token != null && !("Bearer " + repo.token).equals(auth)) {
                error(x, auth == null ? 401 : 403, "GatedRepo", auth == null
                        ? "Access to model " + id + " is restricted. You must have access to it and be authenticated to access it. Please log in."
                        : "Access to model " + id + " is restricted and you are not in the authorized list. Visit https://huggingface.co/" + id + " to ask for access.", null);
                return;
            }
            String commit = repo.commitOf(rev);
            if (commit == null) {
                error(x, 404, "RevisionNotFound", "Invalid rev id: " + rev, null);
                return;
            }
            Map<String, Blob> files = repo.commits.get(commit);
            if (api && kind.equals("revision")) {
                revisionInfo(x, repo, commit, files, "blobs=true".equals(x.getRequestURI().getRawQuery()));
            } else if (api && kind.equals("tree")) {
                tree(x, files);
            } else if (!api && kind.equals("resolve")) {
                String file = URLDecoder.decode(rest, StandardCharsets.UTF_8);
                Blob b = files.get(file);
                if (b == null || vanished.contains(file)) {
                    error(x, 404, "EntryNotFound", "Entry not found", commit);
                    return;
                }
                x.getResponseHeaders().set("X-Repo-Commit", commit);
                if (b.lfs()) {
                    x.getResponseHeaders().set("Location", cdn() + b.sha256() + "?X-Amz-Expires=3600&X-Amz-Signature=test");
                    x.getResponseHeaders().set("X-Linked-Etag", "\"" + b.sha256() + "\"");
                    x.getResponseHeaders().set("X-Linked-Size", Long.toString(b.bytes().length));
                    x.getResponseHeaders().set("ETag", "\"" + b.oid() + "\"");
                    x.sendResponseHeaders(302, -1);
                } else {
                    x.getResponseHeaders().set("ETag", "W/\"" + b.oid() + "\"");
                    body(x, b, id + "/" + file);
                }
            } else {
                error(x, 404, null, "Not found", null);
            }
        }
    }

    private void cdn(HttpExchange x, String sha256) throws IOException {
        for (Repo r : repos.values()) {
            for (Map<String, Blob> files : r.commits.values()) {
                for (Blob b : files.values()) {
                    if (b.lfs() && b.sha256().equals(sha256)) {
                        x.getResponseHeaders().set("ETag", "\"" + sha256 + "\"");
                        body(x, b, sha256);
                        return;
                    }
                }
            }
        }
        error(x, 404, null, "NoSuchKey", null);
    }

    /** The file's bytes, or from "Range: bytes=N-" on (206), with the faults asked for. */
    private void body(HttpExchange x, Blob b, String key) throws IOException {
        byte[] bytes = b.bytes();
        long from = 0;
        String range = x.getRequestHeaders().getFirst("Range");
        if (range != null && range.matches("bytes=\\d+-") && !ignoreRange) from = Long.parseLong(range.substring(6, range.length() - 1));
        x.getResponseHeaders().set("Accept-Ranges", "bytes");
        if (from >= bytes.length && from > 0) {
            x.getResponseHeaders().set("Content-Range", "bytes */" + bytes.length);
            x.sendResponseHeaders(416, -1);
            return;
        }
        int status = from > 0 ? 206 : 200;
        if (from > 0) x.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + (bytes.length - 1) + "/" + bytes.length);
        long length = bytes.length - from;
        if (x.getRequestMethod().equals("HEAD")) {
            x.getResponseHeaders().set("Content-Length", Long.toString(length));
            x.sendResponseHeaders(status, -1);
            return;
        }
        byte[] out = bytes.clone();
        if (corrupt.merge(b.etag(), -1, Integer::sum) >= 0) out[out.length / 2] ^= 0x5a;
        else corrupt.remove(b.etag());
        Integer cut = cutAfter.remove(b.etag()), stall = stallAfter.remove(b.etag());
        x.sendResponseHeaders(status, length);
        OutputStream os = x.getResponseBody();
        int n = (int) (cut != null ? Math.min(cut, length) : stall != null ? Math.min(stall, length) : length);
        AtomicLong counter = sent.computeIfAbsent(key, k -> new AtomicLong());
        counter.addAndGet(n); // before the bytes leave: a client may have them all and a test read the count before this thread goes on
        try {
            os.write(out, (int) from, n);
            os.flush();
        } catch (IOException e) {
            counter.addAndGet(-n);
            throw e;
        }
        if (cut != null) throw new IOException("FakeHub cut the download of " + key + " after " + n + " bytes"); // closes the connection mid-body
        if (stall != null) {
            try {
                Thread.sleep(30_000);                                      // a connection that stops sending; close() interrupts it
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            throw new IOException("FakeHub stalled the download of " + key + " after " + n + " bytes");
        }
    }

    private void revisionInfo(HttpExchange x, Repo repo, String commit, Map<String, Blob> files, boolean blobs) throws IOException {
        ObjectNode o = JSON.createObjectNode();
        o.put("_id", hex("SHA-1", repo.id.getBytes(StandardCharsets.UTF_8)).substring(0, 24));
        o.put("id", repo.id);
        o.put("modelId", repo.id);
        o.put("author", repo.id.split("/")[0]);
        o.put("sha", commit);
        o.put("lastModified", "2025-01-01T00:00:00.000Z");
        o.put("private", false);
        if (repo.token != null) o.put("gated", "manual");
        else o.put("gated", false);
        o.put("disabled", false);
        o.putArray("tags");
        ArrayNode siblings = o.putArray("siblings");
        files.forEach((p, b) -> {
            ObjectNode s = siblings.addObject();
            s.put("rfilename", p);
            if (blobs) {
                s.put("size", b.bytes().length);
                s.put("blobId", b.oid());
                if (b.lfs()) {
                    ObjectNode lfs = s.putObject("lfs");
                    lfs.put("size", b.bytes().length);
                    lfs.put("sha256", b.sha256());
                    lfs.put("pointerSize", b.pointer().length);
                }
            }
        });
        o.put("createdAt", "2025-01-01T00:00:00.000Z");
        json(x, o.toString());
    }

    /** The recursive tree listing: every file, and the folders above them. */
    private void tree(HttpExchange x, Map<String, Blob> files) throws IOException {
        ArrayNode a = JSON.createArrayNode();
        TreeSet<String> folders = new TreeSet<>();
        for (String p : files.keySet()) {
            for (int i = p.indexOf('/'); i > 0; i = p.indexOf('/', i + 1)) folders.add(p.substring(0, i));
        }
        for (String f : folders) {
            ObjectNode d = a.addObject();
            d.put("type", "directory");
            d.put("oid", hex("SHA-1", f.getBytes(StandardCharsets.UTF_8)));
            d.put("size", 0);
            d.put("path", f);
        }
        files.forEach((p, b) -> {
            ObjectNode f = a.addObject();
            f.put("type", "file");
            f.put("oid", b.oid());
            f.put("size", b.bytes().length);
            f.put("path", p);
            if (b.lfs()) {
                ObjectNode lfs = f.putObject("lfs");
                lfs.put("oid", b.sha256());
                lfs.put("size", b.bytes().length);
                lfs.put("pointerSize", b.pointer().length);
            }
        });
        json(x, a.toString());
    }

    private static void json(HttpExchange x, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        x.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        if (x.getRequestMethod().equals("HEAD")) {
            x.sendResponseHeaders(200, -1);
            return;
        }
        x.sendResponseHeaders(200, b.length);
        x.getResponseBody().write(b);
    }

    private static void error(HttpExchange x, int status, String code, String message, String commit) throws IOException {
        if (code != null) x.getResponseHeaders().set("X-Error-Code", code);
        x.getResponseHeaders().set("X-Error-Message", message);
        if (commit != null) x.getResponseHeaders().set("X-Repo-Commit", commit);
        byte[] b = JSON.createObjectNode().put("error", message).toString().getBytes(StandardCharsets.UTF_8);
        x.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        if (x.getRequestMethod().equals("HEAD")) {
            x.sendResponseHeaders(status, -1);
            return;
        }
        x.sendResponseHeaders(status, b.length);
        x.getResponseBody().write(b);
    }

    static String hex(String algorithm, byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance(algorithm).digest(bytes));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
