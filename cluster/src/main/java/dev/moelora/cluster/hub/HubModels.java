package dev.moelora.cluster.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.hub.HubCache.Expected;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Models by name from the Hugging Face Hub: {@code hf:ORG/NAME[@REVISION]} becomes the directory
 * of a snapshot in huggingface_hub's cache holding what a decoder checkpoint needs and nothing else
 * (config.json, generation_config.json, the tokenizer files, and the safetensors weights: one file
 * or the index and the shards it names). Every file is checked against the size and hash the Hub
 * gives before it enters the cache, and every cached file against its hash when it is used; a
 * damaged file is fetched again. Offline (HF_HUB_OFFLINE, or the Hub unreachable) the cache alone
 * serves, and says so. The one entry point of the command line and the configs ({@link #resolve(String)});
 * it never loads a model and never writes outside the cache.
 */
public final class HubModels {
    static final String CONFIG = "config.json", SINGLE = "model.safetensors", INDEX = "model.safetensors.index.json";
    static final List<String> OPTIONAL = List.of("generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json");
    private static final ObjectMapper JSON = new ObjectMapper();
    /** One resolution at a time in this JVM (routers of a local run share the cache); other processes are kept apart by the cache's file locks. */
    private static final Object IN_THIS_JVM = new Object();

    private final ModelName name;
    private final HubSettings settings;
    private final HubCache cache;
    private final Progress progress;

    private HubModels(ModelName name, HubSettings settings) {
        this.name = name;
        this.settings = settings;
        this.cache = new HubCache(settings.cacheRoot(), name);
        this.progress = new Progress(settings.log(), settings.terminal());
    }

    /** A local path as given, or {@code hf:ORG/NAME[@REVISION]} as the snapshot directory, with this process's environment. */
    public static Path resolve(String spec) throws IOException {
        return ModelName.isHub(spec) ? resolve(ModelName.parse(spec), HubSettings.ofThisProcess()) : Path.of(spec);
    }

    public static Path resolve(ModelName name, HubSettings settings) throws IOException {
        synchronized (IN_THIS_JVM) {
            HubModels m = new HubModels(name, settings);
            if (settings.offline()) return m.fromCache("offline (HF_HUB_OFFLINE is set)", null);
            HubClient client = new HubClient(settings);
            HubClient.RepoInfo info;
            try {
                info = client.repoInfo(name);
            } catch (HubException.Unreachable e) {
                return m.fromCache(e.getMessage(), e);
            }
            return m.download(client, info);
        }
    }

    private Path download(HubClient client, HubClient.RepoInfo info) throws IOException {
        String commit = info.commit();
        settings.log().printf("moelora: %s is commit %s at %s (cache %s)%n", name, commit, settings.endpoint(), cache.repoFolder());
        if (!name.revision().equals(commit)) cache.writeRef(name.revision(), commit);
        Map<String, HubClient.Sibling> files = info.files();
        if (!files.containsKey(CONFIG)) {
            throw new HubException(name + " (commit " + commit + ") has no " + CONFIG + ": not a transformers checkpoint (its files: " + files.keySet() + ")");
        }
        List<String> wanted = new ArrayList<>(List.of(CONFIG));
        for (String f : OPTIONAL) if (files.containsKey(f)) wanted.add(f);
        if (files.containsKey(SINGLE)) {
            wanted.add(SINGLE);
        } else if (files.containsKey(INDEX)) {
            fetch(client, commit, files.get(INDEX));
            for (String shard : shards(cache.pointer(commit, INDEX))) {
                if (!files.containsKey(shard)) throw new HubException(name + " (commit " + commit + "): " + INDEX + " names shard " + shard + ", which the repository does not have");
                wanted.add(shard);
            }
        } else {
            List<String> others = files.keySet().stream().filter(f -> f.matches(".*\\.(bin|pth|pt|ckpt|h5|msgpack|onnx|gguf|safetensors)$")).toList();
            throw new HubException(name + " (commit " + commit + ") has neither " + SINGLE + " nor " + INDEX + "; moelora reads safetensors weights only"
                    + (others.isEmpty() ? " and the repository has no weights" : ", and its weights are " + others));
        }
        for (String f : wanted) fetch(client, commit, files.get(f));
        return cache.snapshot(commit);
    }

    /** The shard files an index names, each once, in order; names that leave the snapshot are refused. */
    private List<String> shards(Path index) throws IOException {
        JsonNode map;
        try {
            map = JSON.readTree(Files.readString(index)).path("weight_map");
        } catch (IOException e) {
            throw new HubException(name + ": " + INDEX + " is not valid JSON: " + e.getMessage(), e);
        }
        if (!map.isObject()) throw new HubException(name + ": " + INDEX + " has no object 'weight_map' (tensor name to shard file)");
        Set<String> shards = new LinkedHashSet<>();
        for (Iterator<JsonNode> it = map.elements(); it.hasNext(); ) {
            String shard = it.next().asText();
            if (shard.isEmpty() || shard.startsWith("/") || shard.contains("..") || shard.contains("\\")) {
                throw new HubException(name + ": " + INDEX + " names shard '" + shard + "', which is not a file of the repository");
            }
            shards.add(shard);
        }
        return List.copyOf(shards);
    }

    /**
     * Makes snapshots/&lt;commit&gt;/&lt;file&gt; link to a good blob: a cached one that still hashes to what
     * the Hub says, or one downloaded now (resumed from its .incomplete part) and checked before it
     * is moved into blobs/. A download that does not match is deleted and fetched once more; a
     * second mismatch is an error naming the file, what was expected and what was found.
     */
    private void fetch(HubClient client, String commit, HubClient.Sibling sibling) throws IOException {
        String file = sibling.name();
        Optional<Expected> listed = sibling.etag() != null && HubCache.Hash.of(sibling.etag()).isPresent()
                ? Optional.of(new Expected(sibling.size(), sibling.etag())) : Optional.empty();
        if (cachedIsGood(commit, file, listed)) return;

        HubClient.FileMeta meta = client.head(name, commit, file);
        if (!meta.commit().equals(commit)) {
            throw new HubException(name + ": " + file + ": the Hub answered for commit " + meta.commit() + " when asked for commit " + commit);
        }
        if (HubCache.Hash.of(meta.etag()).isEmpty()) {
            throw new HubException(name + ": " + file + ": the Hub's etag '" + meta.etag() + "' is neither a SHA-256 nor a git SHA-1, so the download cannot be checked");
        }
        if (listed.isPresent() && (!listed.get().etag().equals(meta.etag()) || (meta.size() >= 0 && meta.size() != listed.get().size()))) {
            throw new HubException(name + ": " + file + ": the revision API lists etag " + listed.get().etag() + ", " + listed.get().size()
                    + " bytes, but HEAD /resolve says etag " + meta.etag() + ", " + meta.size() + " bytes");
        }
        Expected expected = new Expected(meta.size() >= 0 ? meta.size() : listed.map(Expected::size).orElse(Expected.UNKNOWN), meta.etag());
        Path blob = cache.blob(expected.etag()), partial = cache.incomplete(expected.etag());
        try (HubCache.Lock lock = cache.lock(expected.etag())) {
            if (Files.exists(blob)) {
                Optional<String> bad = HubCache.mismatch(blob, expected);
                if (bad.isEmpty()) {
                    cache.link(commit, file, expected.etag());
                    progress.done(file + " (" + Progress.bytes(expected.size()) + ") in the cache, " + expected.hash().label() + " checked");
                    return;
                }
                settings.log().println("  " + file + ": the cached blob " + blob + " is damaged (" + bad.get() + "): fetching it again");
                Files.delete(blob);
            }
            for (int attempt = 1; ; attempt++) {
                long had = Files.exists(partial) ? Files.size(partial) : 0;
                long received = downloadResuming(client, meta.location(), partial, file);
                Optional<String> bad = HubCache.mismatch(partial, expected);
                if (bad.isEmpty()) {
                    Files.move(partial, blob, StandardCopyOption.ATOMIC_MOVE);
                    cache.link(commit, file, expected.etag());
                    progress.done(file + " (" + Progress.bytes(expected.size()) + ") downloaded" + (had > 0 ? ", resumed at " + had + " bytes" : "")
                            + ", " + Progress.bytes(received) + " received, " + expected.hash().label() + " checked");
                    return;
                }
                Files.delete(partial);
                if (attempt == 2) {
                    throw new HubException(name + " (commit " + commit + "): " + file + " does not match what the Hub says it is, downloaded twice from "
                            + meta.location() + ": " + bad.get() + " (the bad download was deleted)");
                }
                settings.log().println("  " + file + ": the download does not match (" + bad.get() + "): deleted, fetching it once more");
            }
        }
    }

    /** Whether the snapshot already links the file to a blob that is what the Hub lists; a damaged blob is deleted so it is fetched again. */
    private boolean cachedIsGood(String commit, String file, Optional<Expected> listed) throws IOException {
        Path pointer = cache.pointer(commit, file);
        Optional<String> linked = cache.linkedEtag(commit, file);
        if (linked.isPresent() && listed.isPresent() && !linked.get().equals(listed.get().etag())) return false;
        Optional<Expected> expected = listed.isPresent() ? listed : linked.filter(e -> HubCache.Hash.of(e).isPresent()).map(e -> new Expected(Expected.UNKNOWN, e));
        if (!Files.isRegularFile(pointer) || expected.isEmpty()) return false;
        Optional<String> bad = HubCache.mismatch(pointer, expected.get());
        if (bad.isEmpty()) {
            progress.done(file + " (" + Progress.bytes(Files.size(pointer)) + ") in the cache, " + expected.get().hash().label() + " checked");
            return true;
        }
        Path damaged = linked.isPresent() ? cache.blob(linked.get()) : pointer;
        settings.log().println("  " + file + ": the cached " + damaged + " is damaged (" + bad.get() + "): fetching it again");
        Files.delete(damaged);
        return false;
    }

    /** Downloads into the .incomplete part; a connection that breaks after bringing bytes is resumed with Range, a few times. */
    private long downloadResuming(HubClient client, URI location, Path partial, String file) throws IOException {
        long received = 0;
        for (int resumes = 0; ; resumes++) {
            long before = Files.exists(partial) ? Files.size(partial) : 0;
            try {
                return received + client.download(location, partial, name, file, progress);
            } catch (HubException e) {
                throw e;
            } catch (IOException e) {
                long after = Files.exists(partial) ? Files.size(partial) : 0;
                received += Math.max(0, after - before);
                if (after <= before || resumes >= 5) {
                    throw new HubException(name + ": downloading " + file + " from " + location + " failed at " + after + " bytes (" + e
                            + "); the part is kept as " + partial + " and the next run resumes it", e);
                }
                progress.done(file + ": the connection broke at " + after + " bytes (" + e.getMessage() + "): resuming");
            }
        }
    }

    /**
     * The snapshot the cache holds for the revision (refs/&lt;revision&gt;, or the commit itself), when
     * it has what a checkpoint needs; each file checked against the hash its blob is named by.
     */
    private Path fromCache(String why, Exception cause) throws IOException {
        String where = "the cache at " + cache.repoFolder();
        String commit = name.pinned() ? name.revision() : cache.ref(name.revision()).orElseThrow(() -> new HubException(why + "; " + where
                + " has no refs/" + name.revision() + ": " + name + " was never downloaded here. Download it once with the Hub reachable"
                + " (unset HF_HUB_OFFLINE): " + CONFIG + ", the tokenizer files and " + SINGLE + " (or " + INDEX + " and its shards)", cause));
        Path snapshot = cache.snapshot(commit);
        List<String> present = new ArrayList<>(), missing = new ArrayList<>();
        (cache.exists(commit, CONFIG) ? present : missing).add(CONFIG);
        for (String f : OPTIONAL) if (cache.exists(commit, f)) present.add(f);
        if (cache.exists(commit, SINGLE)) {
            present.add(SINGLE);
        } else if (cache.exists(commit, INDEX)) {
            present.add(INDEX);
            for (String shard : shards(cache.pointer(commit, INDEX))) (cache.exists(commit, shard) ? present : missing).add(shard);
        } else {
            missing.add(SINGLE + " (or " + INDEX + " and its shards)");
        }
        if (!missing.isEmpty()) {
            throw new HubException(why + "; " + where + " holds commit " + commit + " of " + name + " without " + missing
                    + ": download them with the Hub reachable (unset HF_HUB_OFFLINE)", cause);
        }
        settings.log().printf("moelora: %s: using the cached snapshot %s of %s%n", why, snapshot, name);
        for (String f : present) {
            Optional<String> etag = cache.linkedEtag(commit, f).filter(e -> HubCache.Hash.of(e).isPresent());
            if (etag.isEmpty()) {
                progress.done(f + " in the cache (a plain file, not a link to a blob: not checked)");
                continue;
            }
            Expected expected = new Expected(Expected.UNKNOWN, etag.get());
            Optional<String> bad = HubCache.mismatch(cache.blob(etag.get()), expected);
            if (bad.isPresent()) {
                Files.delete(cache.blob(etag.get()));
                throw new HubException(why + "; " + name + ": the cached " + f + " (blob " + cache.blob(etag.get()) + ") is damaged: " + bad.get()
                        + ". It was deleted: run again with the Hub reachable to fetch it", cause);
            }
            progress.done(f + " (" + Progress.bytes(Files.size(cache.blob(etag.get()))) + ") in the cache, " + expected.hash().label() + " checked");
        }
        return snapshot;
    }
}
