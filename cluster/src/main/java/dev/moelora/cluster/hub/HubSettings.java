package dev.moelora.cluster.hub;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Where the Hub is and where its files go, read from the environment variables huggingface_hub
 * reads (its constants.py), so both share one cache: the cache root {@code HF_HUB_CACHE}, else
 * {@code HUGGINGFACE_HUB_CACHE}, else {@code $HF_HOME/hub}, with {@code HF_HOME} defaulting to
 * {@code $XDG_CACHE_HOME/huggingface} or {@code ~/.cache/huggingface}; the endpoint
 * {@code HF_ENDPOINT}; the token {@code HF_TOKEN} (or {@code HUGGING_FACE_HUB_TOKEN}), else the
 * file {@code HF_TOKEN_PATH} or {@code $HF_HOME/token}; offline when {@code HF_HUB_OFFLINE} (or
 * {@code TRANSFORMERS_OFFLINE}) is 1, on, yes or true; {@code HF_HUB_ETAG_TIMEOUT} (seconds, default
 * 10) bounds connecting and each metadata request, {@code HF_HUB_DOWNLOAD_TIMEOUT} (seconds,
 * default 10) how long a download may go without receiving a byte. Built from a map so a test passes its own
 * environment instead of changing the JVM's. Progress and notices go to {@code log}.
 */
public record HubSettings(String endpoint, Path cacheRoot, String token, String tokenSource, boolean offline, PrintStream log, boolean terminal,
                          java.time.Duration etagTimeout, java.time.Duration downloadTimeout) {
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";
    private static final Set<String> TRUE = Set.of("1", "ON", "YES", "TRUE");

    public HubSettings {
        endpoint = endpoint.replaceAll("/+$", "");
    }

    /** The settings of this process: System.getenv(), the user's home, stderr, and whether stderr is a terminal. */
    public static HubSettings ofThisProcess() throws IOException {
        return fromEnvironment(System.getenv(), Path.of(System.getProperty("user.home")), System.err, System.console() != null);
    }

    public static HubSettings fromEnvironment(Map<String, String> env, Path home, PrintStream log, boolean terminal) throws IOException {
        Path hfHome = path(env, "HF_HOME", home, path(env, "XDG_CACHE_HOME", home, home.resolve(".cache")).resolve("huggingface"));
        Path cache = path(env, "HF_HUB_CACHE", home, path(env, "HUGGINGFACE_HUB_CACHE", home, hfHome.resolve("hub")));
        String token = clean(env.get("HF_TOKEN")), source = "HF_TOKEN";
        if (token == null) {
            token = clean(env.get("HUGGING_FACE_HUB_TOKEN"));
            source = "HUGGING_FACE_HUB_TOKEN";
        }
        if (token == null) {
            Path file = path(env, "HF_TOKEN_PATH", home, hfHome.resolve("token"));
            if (Files.isRegularFile(file)) {
                token = clean(Files.readString(file));
                source = "the token file " + file;
            }
        }
        if (token == null) source = null;
        boolean offline = isTrue(env.get("HF_HUB_OFFLINE")) || isTrue(env.get("TRANSFORMERS_OFFLINE"));
        String endpoint = env.getOrDefault("HF_ENDPOINT", DEFAULT_ENDPOINT);
        return new HubSettings(endpoint.isBlank() ? DEFAULT_ENDPOINT : endpoint, cache, token, source, offline, log, terminal,
                seconds(env, "HF_HUB_ETAG_TIMEOUT"), seconds(env, "HF_HUB_DOWNLOAD_TIMEOUT"));
    }

    /** A timeout in seconds (huggingface_hub's default 10), as a positive number; anything else is an error naming the variable. */
    private static java.time.Duration seconds(Map<String, String> env, String key) {
        String v = env.get(key);
        if (v == null || v.isBlank()) return java.time.Duration.ofSeconds(10);
        double s;
        try {
            s = Double.parseDouble(v.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + "=" + v + ": expected a number of seconds");
        }
        if (!(s > 0) || Double.isInfinite(s)) throw new IllegalArgumentException(key + "=" + v + ": expected a number of seconds > 0");
        return java.time.Duration.ofMillis(Math.max(1, Math.round(s * 1000)));
    }

    private static Path path(Map<String, String> env, String key, Path home, Path otherwise) {
        String v = env.get(key);
        if (v == null || v.isBlank()) return otherwise;
        return v.equals("~") ? home : v.startsWith("~/") ? home.resolve(v.substring(2)) : Path.of(v);
    }

    private static String clean(String token) {
        if (token == null) return null;
        String t = token.replace("\r", "").replace("\n", "").strip();
        return t.isEmpty() ? null : t;
    }

    private static boolean isTrue(String v) {
        return v != null && TRUE.contains(v.strip().toUpperCase(Locale.ROOT));
    }

    public HubSettings withOffline(boolean offline) {
        return new HubSettings(endpoint, cacheRoot, token, tokenSource, offline, log, terminal, etagTimeout, downloadTimeout);
    }
}
