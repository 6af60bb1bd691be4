package dev.moelora.cluster.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The Hub's HTTP interface as huggingface_hub uses it, on the JDK's HttpClient: the revision API
 * ({@code GET /api/models/REPO/revision/REV?blobs=true}: commit and files with sizes and hashes),
 * file metadata ({@code HEAD /REPO/resolve/COMMIT/FILE}: X-Repo-Commit, ETag or X-Linked-Etag,
 * X-Linked-Size, and the Location of an LFS file's CDN copy), and downloads that resume with a
 * Range request. Redirects are followed here, relative or absolute; the token is sent as
 * {@code Authorization: Bearer} to the Hub's own host only, never to a CDN. Hub errors become
 * {@link HubException}s naming the repo, revision and file; it never touches the cache.
 */
final class HubClient {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_REDIRECTS = 10;

    private final HubSettings settings;
    private final HttpClient http;
    private final String hubHost;

    HubClient(HubSettings settings) {
        this.settings = settings;
        this.http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).connectTimeout(settings.etagTimeout()).build();
        this.hubHost = URI.create(settings.endpoint()).getHost();
    }

    /** A file of the revision as the revision API lists it: its size and etag when the Hub gave them (blobs=true). */
    record Sibling(String name, long size, String etag) {}

    record RepoInfo(String commit, Map<String, Sibling> files) {}

    /** What HEAD /resolve says of a file: the commit it is at, its etag and size, and the URL its bytes come from. */
    record FileMeta(String commit, String etag, long size, URI location) {}

    RepoInfo repoInfo(ModelName name) throws IOException {
        URI uri = URI.create(settings.endpoint() + "/api/models/" + name.repo() + "/revision/" + encode(name.revision()) + "?blobs=true");
        HttpResponse<byte[]> r = follow(uri, "GET", HttpResponse.BodyHandlers.ofByteArray(), name, null);
        failUnlessOk(r, name, null);
        JsonNode root;
        try {
            root = JSON.readTree(r.body());
        } catch (IOException e) {
            throw new HubException(name + ": " + uri + " answered with something that is not JSON: " + e.getMessage(), e);
        }
        String commit = root.path("sha").asText("");
        if (!commit.matches("[0-9a-f]{40}")) throw new HubException(name + ": " + uri + " gave no commit hash ('sha'): is " + settings.endpoint() + " a Hugging Face Hub?");
        Map<String, Sibling> files = new LinkedHashMap<>();
        for (JsonNode s : root.path("siblings")) {
            String file = s.path("rfilename").asText();
            JsonNode lfs = s.path("lfs");
            long size = lfs.isObject() ? lfs.path("size").asLong(-1) : s.path("size").asLong(-1);
            String etag = lfs.isObject() ? lfs.path("sha256").asText(null) : s.path("blobId").asText(null);
            files.put(file, new Sibling(file, size, etag));
        }
        return new RepoInfo(commit, files);
    }

    /** HEAD of one file at a commit. Redirects within the Hub's host are followed; one to another host (the CDN) is where the bytes are. */
    FileMeta head(ModelName name, String commit, String file) throws IOException {
        URI uri = resolveUrl(name, commit, file);
        HttpResponse<Void> r = follow(uri, "HEAD", HttpResponse.BodyHandlers.discarding(), name, file);
        if (r.statusCode() / 100 != 3) failUnlessOk(r, name, file);
        HttpHeaders h = r.headers();
        String at = h.firstValue("X-Repo-Commit").orElseThrow(() -> new HubException(name + ": HEAD " + uri + " has no X-Repo-Commit header: is "
                + settings.endpoint() + " a Hugging Face Hub (HF_ENDPOINT)?"));
        String etag = h.firstValue("X-Linked-Etag").or(() -> h.firstValue("ETag"))
                .map(HubClient::normalizeEtag).orElseThrow(() -> new HubException(name + ": " + file + " has no ETag: its content cannot be checked"));
        boolean redirect = r.statusCode() / 100 == 3;
        long size = h.firstValue("X-Linked-Size").or(() -> redirect ? Optional.empty() : h.firstValue("Content-Length")).map(Long::parseLong).orElse(-1L);
        URI location = redirect ? r.uri().resolve(h.firstValue("Location").orElseThrow()) : r.uri();
        return new FileMeta(at, etag, size, location);
    }

    /** As huggingface_hub's _normalize_etag: W/"x" and "x" are both x. */
    static String normalizeEtag(String etag) {
        String e = etag.strip();
        if (e.startsWith("W/")) e = e.substring(2);
        return e.replace("\"", "");
    }

    /**
     * GETs {@code location} into {@code partial}, from its current length with {@code Range: bytes=N-}
     * when it has bytes already; a server that ignores the Range (200) or cannot serve it (416)
     * gets the whole file again. A body that brings no byte for {@code HF_HUB_DOWNLOAD_TIMEOUT} is
     * closed and this throws, keeping the part (the caller resumes it). Returns the bytes received
     * in this call.
     */
    long download(URI location, Path partial, ModelName name, String file, Progress progress) throws IOException {
        long have = Files.exists(partial) ? Files.size(partial) : 0;
        HttpResponse<InputStream> r = get(location, have, name, file);
        if (r.statusCode() == 416) {
            r.body().close();
            Files.deleteIfExists(partial);
            have = 0;
            r = get(location, 0, name, file);
        }
        boolean append = have > 0 && r.statusCode() == 206;
        if (!append && r.statusCode() != 200) {
            r.body().close();
            failUnlessOk(r, name, file);
            throw new HubException(name + ": " + file + ": unexpected HTTP " + r.statusCode() + " from " + r.uri());
        }
        long from = append ? have : 0, total = total(r.headers(), from);
        long received = 0;
        Files.createDirectories(partial.getParent());
        InputStream body = r.body();
        StallWatch watch = new StallWatch(body, settings.downloadTimeout());
        try (InputStream in = body;
             OutputStream out = Files.newOutputStream(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                     append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            progress.start(file, from, total);
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                watch.progressed();
                out.write(buf, 0, n);
                received += n;
                progress.advance(n);
            }
        } catch (IOException e) {
            if (watch.stalled()) {
                throw new IOException("no byte for " + settings.downloadTimeout().toMillis() / 1000.0 + " s (HF_HUB_DOWNLOAD_TIMEOUT) after " + received
                        + " bytes", e);
            }
            throw e;
        } finally {
            watch.stop();
        }
        if (watch.stalled()) {
            throw new IOException("no byte for " + settings.downloadTimeout().toMillis() / 1000.0 + " s (HF_HUB_DOWNLOAD_TIMEOUT) after " + received + " bytes");
        }
        return received;
    }

    /**
     * Closes a download's body when it has brought no byte for the timeout, so that a read blocked
     * on a stalled connection returns (HttpClient has no read timeout of its own). One daemon
     * thread per download, checking a few times per timeout.
     */
    private static final class StallWatch {
        private final InputStream body;
        private final long timeoutNanos;
        private volatile long last = System.nanoTime();
        private volatile boolean stalled, stopped;
        private final Thread thread;

        StallWatch(InputStream body, Duration timeout) {
            this.body = body;
            this.timeoutNanos = timeout.toNanos();
            long tick = Math.max(10, timeout.toMillis() / 4);
            this.thread = new Thread(() -> {
                while (!stopped) {
                    try {
                        Thread.sleep(tick);
                    } catch (InterruptedException e) {
                        return;
                    }
                    if (!stopped && System.nanoTime() - last > timeoutNanos) {
                        stalled = true;
                        try {
                            body.close();
                        } catch (IOException ignored) {
                            // the read it unblocks reports the stall
                        }
                        return;
                    }
                }
            }, "hub-download-watch");
            thread.setDaemon(true);
            thread.start();
        }

        void progressed() { last = System.nanoTime(); }

        boolean stalled() { return stalled; }

        void stop() {
            stopped = true;
            thread.interrupt();
        }
    }

    private static long total(HttpHeaders h, long from) {
        Optional<String> range = h.firstValue("Content-Range");
        if (range.isPresent() && range.get().contains("/") && !range.get().endsWith("/*")) return Long.parseLong(range.get().substring(range.get().lastIndexOf('/') + 1).strip());
        return h.firstValueAsLong("Content-Length").stream().map(n -> n + from).findFirst().orElse(-1L);
    }

    private HttpResponse<InputStream> get(URI location, long from, ModelName name, String file) throws IOException {
        return follow(location, "GET", HttpResponse.BodyHandlers.ofInputStream(), name, file, from);
    }

    private <T> HttpResponse<T> follow(URI uri, String method, HttpResponse.BodyHandler<T> body, ModelName name, String file) throws IOException {
        return follow(uri, method, body, name, file, 0);
    }

    /**
     * Sends the request and follows redirects (relative or absolute). HEAD and API requests stop at a
     * redirect to another host, as huggingface_hub's do: that answer carries the file's metadata and
     * its Location is the CDN. Downloads follow it, without the token.
     */
    private <T> HttpResponse<T> follow(URI uri, String method, HttpResponse.BodyHandler<T> body, ModelName name, String file, long from) throws IOException {
        boolean download = method.equals("GET") && file != null;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder b = HttpRequest.newBuilder(uri).method(method, HttpRequest.BodyPublishers.noBody())
                    .header("User-Agent", "moelora/0.1 (java " + Runtime.version().feature() + ")").header("Accept-Encoding", "identity");
            if (!download) b.timeout(settings.etagTimeout());
            if (settings.token() != null && hubHost.equalsIgnoreCase(uri.getHost())) b.header("Authorization", "Bearer " + settings.token());
            if (from > 0) b.header("Range", "bytes=" + from + "-");
            HttpResponse<T> r;
            try {
                r = http.send(b.build(), body);
            } catch (ConnectException | HttpConnectTimeoutException e) {
                throw new HubException.Unreachable("cannot reach " + uri.getScheme() + "://" + uri.getAuthority() + " (" + describe(e) + ")", e);
            } catch (HttpTimeoutException e) {
                throw new HubException.Unreachable(uri.getScheme() + "://" + uri.getAuthority() + " did not answer within " + settings.etagTimeout().toMillis() / 1000.0 + " s (HF_HUB_ETAG_TIMEOUT)", e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while fetching " + uri);
            }
            int status = r.statusCode();
            Optional<String> location = r.headers().firstValue("Location");
            if (status / 100 != 3 || location.isEmpty() || status == 304) return r;
            URI target = uri.resolve(location.get());
            if (!download && !sameHost(uri, target)) return r;
            if (r.body() instanceof InputStream in) in.close();
            uri = target;
        }
        throw new HubException(name + ": more than " + MAX_REDIRECTS + " redirects fetching " + (file == null ? "the revision" : file) + " (last: " + uri + ")");
    }

    private static boolean sameHost(URI a, URI b) {
        return a.getHost() != null && a.getHost().equalsIgnoreCase(b.getHost());
    }

    private static String describe(Exception e) {
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
    }

    URI resolveUrl(ModelName name, String revision, String file) {
        StringBuilder path = new StringBuilder();
        for (String part : file.split("/")) path.append('/').append(encode(part));
        return URI.create(settings.endpoint() + "/" + name.repo() + "/resolve/" + encode(revision) + path);
    }

    private static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** The Hub's refusals, as huggingface_hub's hf_raise_for_status reads them (X-Error-Code, X-Error-Message), in words that say what to do. */
    private void failUnlessOk(HttpResponse<?> r, ModelName name, String file) throws HubException {
        int status = r.statusCode();
        if (status / 100 == 2) return;
        String code = r.headers().firstValue("X-Error-Code").orElse(""), said = r.headers().firstValue("X-Error-Message").orElse("");
        String detail = "HTTP " + status + (code.isEmpty() ? "" : " " + code) + (said.isEmpty() ? "" : ": " + said);
        String what = file == null ? name.toString() : name + ", file " + file;
        String page = settings.endpoint() + "/" + name.repo();
        String token = settings.token() == null ? "no token was sent: set HF_TOKEN (or log in with `hf auth login`, which writes $HF_HOME/token)"
                : "the token from " + settings.tokenSource() + " was refused: check that it can read this repository";
        if (code.equals("GatedRepo")) {
            throw new HubException(what + ": " + name.repo() + " is a gated repository (" + detail + "); accept its conditions at " + page + ", then " + token);
        }
        if (code.equals("RevisionNotFound")) {
            throw new HubException(name + ": revision '" + name.revision() + "' is not a branch, tag or commit of " + name.repo() + " (" + detail + ")");
        }
        if (code.equals("EntryNotFound")) {
            throw new HubException(what + ": " + name.repo() + " has no file '" + file + "' at revision " + name.revision() + " (" + detail + ")");
        }
        if (code.equals("RepoNotFound") || status == 401 || status == 403) {
            throw new HubException(what + ": repository " + name.repo() + " not found at " + settings.endpoint() + ", or it is private or gated (" + detail
                    + "): check the name; if it is private or gated, " + token);
        }
        if (status / 100 == 5 && file == null) throw new HubException.Unreachable(settings.endpoint() + " failed (" + detail + ")", null);
        throw new HubException(what + ": " + detail + " from " + r.uri());
    }
}
