package dev.moelora.cluster.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.cluster.cli.DecoderCommandsTest;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * hf:ORG/NAME[@REVISION] against a Hub on 127.0.0.1 ({@link FakeHub}) serving the committed tiny
 * checkpoints: the cache it fills is huggingface_hub's layout, holds only a checkpoint's files and
 * loads as the local directory does; a second run needs no request (offline or the Hub down);
 * damaged, truncated and interrupted files are caught and fetched again (resumed with Range); and
 * every refusal of the Hub is an error naming the repo, revision and file.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HubModelsTest {
    @TempDir
    Path dir;
    Path cache;
    TinyHub tiny;
    final ByteArrayOutputStream log = new ByteArrayOutputStream();

    @BeforeEach
    void startHub() throws Exception {
        cache = dir.resolve("hub-cache");
        tiny = new TinyHub();
    }

    @AfterEach
    void stopHub() {
        tiny.hub.close();
    }

    private Path resolve(String spec, String... env) throws Exception {
        return HubModels.resolve(ModelName.parse(spec), tiny.settings(cache, log, env));
    }

    private String logged() {
        return log.toString(StandardCharsets.UTF_8);
    }

    private Path repo() {
        return cache.resolve("models--org--tiny");
    }

    private static Set<String> names(Path dir) throws Exception {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> !Files.isDirectory(p)).map(p -> dir.relativize(p).toString()).collect(Collectors.toCollection(java.util.TreeSet::new));
        }
    }

    private static DecoderCommandsTest.Run forward(Path model) {
        DecoderCommandsTest.Run r = DecoderCommandsTest.moelora("forward", "--model", model.toString(), "--ids", "1,5,9,22,31,7");
        assertEquals(0, r.exit(), r.err());
        return r;
    }

    @Test
    void aFreshCacheIsFilledInHuggingFaceHubsLayoutWithTheCheckpointFilesOnlyAndLoadsAsTheLocalDirectory() throws Exception {
        Path snapshot = resolve("hf:org/tiny");

        assertEquals(repo().resolve("snapshots").resolve(tiny.main), snapshot);
        assertEquals(tiny.main, Files.readString(repo().resolve("refs/main")), "refs/main holds the commit hash, nothing else");
        assertEquals(Set.of("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"), names(snapshot),
                "a checkpoint's files only: no pytorch_model.bin, onnx/, README.md or .gitattributes");
        for (String f : names(snapshot)) {
            FakeHub.Blob b = tiny.file(tiny.main, f);
            Path link = snapshot.resolve(f);
            assertTrue(Files.isSymbolicLink(link), f);
            assertEquals(Path.of("../../blobs/" + b.etag()), Files.readSymbolicLink(link), f + ": a relative link to its blob");
            assertEquals(f.endsWith(".safetensors") ? 64 : 40, b.etag().length(), f + ": LFS blobs are named by SHA-256, regular files by git SHA-1");
            assertTrue(Arrays.equals(b.bytes(), Files.readAllBytes(repo().resolve("blobs").resolve(b.etag()))), f);
        }
        assertEquals(5, names(repo().resolve("blobs")).size(), "one blob per file, no .incomplete left: " + names(repo().resolve("blobs")));
        for (FakeHub.Request r : tiny.hub.requests()) {
            assertFalse(r.path().contains("pytorch_model.bin") || r.path().contains("onnx") || r.path().contains("README"), r.toString());
        }
        assertTrue(tiny.hub.requests().stream().anyMatch(r -> r.path().startsWith("/cdn/") && r.host().startsWith("localhost")),
                "the weights came from the CDN the 302 named");
        assertEquals(forward(TinyHub.GQA).out(), forward(snapshot).out(), "forward on the snapshot equals forward on the committed directory");
    }

    @Test
    void aSecondRunNeedsNoRequestOfflineOrWithTheHubStoppedAndOnlyTheRevisionCallOnline() throws Exception {
        Path snapshot = resolve("hf:org/tiny");
        int filled = tiny.hub.requests().size();

        assertEquals(snapshot, resolve("hf:org/tiny"));
        List<FakeHub.Request> online = tiny.hub.requests().subList(filled, tiny.hub.requests().size());
        assertEquals(1, online.size(), "a filled cache online: the revision API only, no HEAD or download: " + online);

        int before = tiny.hub.requests().size();
        assertEquals(snapshot, resolve("hf:org/tiny", "HF_HUB_OFFLINE", "1"));
        assertEquals(before, tiny.hub.requests().size(), "HF_HUB_OFFLINE=1 sends no request");
        assertTrue(logged().contains("offline (HF_HUB_OFFLINE is set)"), logged());

        tiny.hub.close();
        assertEquals(snapshot, resolve("hf:org/tiny"));
        assertTrue(logged().contains("cannot reach " + tiny.hub.endpoint()) && logged().contains("using the cached snapshot"), logged());
        assertEquals(before, tiny.hub.requests().size());
    }

    @Test
    void aCorruptedAndATruncatedCachedBlobAreDetectedAndFetchedAgain() throws Exception {
        Path snapshot = resolve("hf:org/tiny");
        FakeHub.Blob weights = tiny.file(tiny.main, "model.safetensors"), config = tiny.file(tiny.main, "config.json");
        Path weightsBlob = repo().resolve("blobs").resolve(weights.etag()), configBlob = repo().resolve("blobs").resolve(config.etag());
        byte[] damaged = weights.bytes().clone();
        damaged[100] ^= 1;
        Files.write(weightsBlob, damaged);
        Files.write(configBlob, Arrays.copyOf(config.bytes(), config.bytes().length - 7));

        assertEquals(snapshot, resolve("hf:org/tiny"));
        assertTrue(Arrays.equals(weights.bytes(), Files.readAllBytes(weightsBlob)), "the corrupted weights were fetched again");
        assertTrue(Arrays.equals(config.bytes(), Files.readAllBytes(configBlob)), "the truncated config was fetched again");
        assertEquals(2L * weights.bytes().length, tiny.hub.sent(weights.sha256()));
        assertEquals(2L * config.bytes().length, tiny.hub.sent("org/tiny/config.json"));
        assertTrue(logged().contains("model.safetensors: the cached") && logged().contains("damaged (expected SHA-256 " + weights.etag()), logged());
        assertTrue(logged().contains("config.json: the cached") && logged().contains("expected " + config.bytes().length + " bytes, found "
                + (config.bytes().length - 7)), logged());

        Files.write(weightsBlob, damaged);
        HubException offline = assertThrows(HubException.class, () -> resolve("hf:org/tiny", "HF_HUB_OFFLINE", "1"));
        assertTrue(offline.getMessage().contains("model.safetensors") && offline.getMessage().contains("damaged")
                && offline.getMessage().contains("expected SHA-256 " + weights.etag() + ", found "), offline.getMessage());
    }

    @Test
    void aDownloadThatDoesNotMatchIsFetchedOnceMoreAndASecondMismatchNamesTheFileExpectedAndFound() throws Exception {
        FakeHub.Blob weights = tiny.file(tiny.main, "model.safetensors");
        tiny.hub.corrupt.put(weights.etag(), 1);
        resolve("hf:org/tiny");
        assertEquals(2L * weights.bytes().length, tiny.hub.sent(weights.sha256()), logged());
        assertTrue(logged().contains("model.safetensors: the download does not match (expected SHA-256 " + weights.etag()), logged());

        Path other = dir.resolve("other-cache");
        tiny.hub.corrupt.put(weights.etag(), 2);
        HubException e = assertThrows(HubException.class, () -> HubModels.resolve(ModelName.parse("hf:org/tiny"), tiny.settings(other, log)));
        assertTrue(e.getMessage().contains("hf:org/tiny@main") && e.getMessage().contains("model.safetensors does not match")
                && e.getMessage().contains("expected SHA-256 " + weights.etag() + ", found "), e.getMessage());
        assertFalse(Files.exists(other.resolve("models--org--tiny/blobs").resolve(weights.etag())), "a bad download never enters blobs/");
        assertFalse(Files.exists(other.resolve("models--org--tiny/blobs").resolve(weights.etag() + ".incomplete")));
    }

    /** A connection that stops sending mid-file is given up after HF_HUB_DOWNLOAD_TIMEOUT and resumed with Range. */
    @Test
    void aStalledDownloadIsGivenUpAfterTheDownloadTimeoutAndResumed() throws Exception {
        FakeHub.Blob weights = tiny.file(tiny.main, "model.safetensors");
        tiny.hub.stallAfter.put(weights.etag(), 12_000);
        long started = System.nanoTime();
        Path snapshot = HubModels.resolve(ModelName.parse("hf:org/tiny"), tiny.settings(dir.resolve("stall-cache"), log, "HF_HUB_DOWNLOAD_TIMEOUT", "0.5"));
        double seconds = (System.nanoTime() - started) / 1e9;
        assertTrue(Arrays.equals(weights.bytes(), Files.readAllBytes(snapshot.resolve("model.safetensors"))));
        assertTrue(seconds < 20, "given up long before the server's 30 s stall: " + seconds + " s");
        assertTrue(logged().contains("HF_HUB_DOWNLOAD_TIMEOUT"), logged());
        assertTrue(tiny.hub.requests().stream().anyMatch(r -> r.path().startsWith("/cdn/") && "bytes=12000-".equals(r.range())), tiny.hub.requests().toString());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> tiny.settings(dir.resolve("x"), log, "HF_HUB_DOWNLOAD_TIMEOUT", "soon"));
        assertTrue(bad.getMessage().contains("HF_HUB_DOWNLOAD_TIMEOUT=soon"), bad.getMessage());
    }

    @Test
    void anInterruptedDownloadResumesWithRangeInTheSameRunAndInTheNext() throws Exception {
        FakeHub.Blob weights = tiny.file(tiny.main, "model.safetensors");
        int size = weights.bytes().length;
        tiny.hub.cutAfter.put(weights.etag(), 10_000);
        Path snapshot = resolve("hf:org/tiny");
        assertTrue(Arrays.equals(weights.bytes(), Files.readAllBytes(snapshot.resolve("model.safetensors"))));
        assertEquals(size, tiny.hub.sent(weights.sha256()), "the broken download was resumed, not restarted: every byte sent once");
        assertTrue(tiny.hub.requests().stream().anyMatch(r -> r.path().startsWith("/cdn/") && "bytes=10000-".equals(r.range())), tiny.hub.requests().toString());

        Path next = dir.resolve("next-cache"), part = next.resolve("models--org--tiny/blobs").resolve(weights.etag() + ".incomplete");
        Files.createDirectories(part.getParent());
        Files.write(part, Arrays.copyOf(weights.bytes(), 30_000));
        long sentBefore = tiny.hub.sent(weights.sha256());
        HubModels.resolve(ModelName.parse("hf:org/tiny"), tiny.settings(next, log));
        assertEquals(size - 30_000, tiny.hub.sent(weights.sha256()) - sentBefore, "the part a previous run left was resumed with Range");
        assertTrue(logged().contains("resumed at 30000 bytes"), logged());
        assertFalse(Files.exists(part));

        Path garbled = dir.resolve("garbled-cache"), bad = garbled.resolve("models--org--tiny/blobs").resolve(weights.etag() + ".incomplete");
        Files.createDirectories(bad.getParent());
        byte[] wrong = Arrays.copyOf(weights.bytes(), 30_000);
        wrong[5] ^= 1;
        Files.write(bad, wrong);
        sentBefore = tiny.hub.sent(weights.sha256());
        Path ok = HubModels.resolve(ModelName.parse("hf:org/tiny"), tiny.settings(garbled, log));
        assertTrue(Arrays.equals(weights.bytes(), Files.readAllBytes(ok.resolve("model.safetensors"))), "a bad part is dropped and the file fetched whole");
        assertEquals(size - 30_000 + size, tiny.hub.sent(weights.sha256()) - sentBefore);

        Path ignored = dir.resolve("ignored-range-cache"), kept = ignored.resolve("models--org--tiny/blobs").resolve(weights.etag() + ".incomplete");
        Files.createDirectories(kept.getParent());
        Files.write(kept, Arrays.copyOf(weights.bytes(), 30_000));
        tiny.hub.ignoreRange = true;
        sentBefore = tiny.hub.sent(weights.sha256());
        Path whole = HubModels.resolve(ModelName.parse("hf:org/tiny"), tiny.settings(ignored, log));
        assertTrue(Arrays.equals(weights.bytes(), Files.readAllBytes(whole.resolve("model.safetensors"))));
        assertEquals(size, tiny.hub.sent(weights.sha256()) - sentBefore, "a 200 to a Range request replaces the part, it is not appended to it");
    }

    @Test
    void aRevisionSelectsAnotherCommitByTagOrHash() throws Exception {
        Path v1 = resolve("hf:org/tiny@v1");
        assertEquals(repo().resolve("snapshots").resolve(tiny.v1), v1);
        assertEquals(tiny.v1, Files.readString(repo().resolve("refs/v1")));
        assertEquals(Set.of("config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"), names(v1));
        assertEquals(forward(TinyHub.SHARDED).out(), forward(v1).out());

        assertEquals(v1, resolve("hf:org/tiny@" + tiny.v1));
        assertFalse(Files.exists(repo().resolve("refs").resolve(tiny.v1)), "a commit hash is not a ref");
        assertEquals(repo().resolve("snapshots").resolve(tiny.main), resolve("hf:org/tiny"));
        assertEquals(v1, resolve("hf:org/tiny@v1", "HF_HUB_OFFLINE", "1"), "offline, refs/v1 leads to its snapshot");
    }

    @Test
    void aGatedRepositoryNeedsTheTokenWhichNeverGoesToTheCdn() throws Exception {
        HubException none = assertThrows(HubException.class, () -> resolve("hf:org/gated"));
        assertTrue(none.getMessage().contains("hf:org/gated@main") && none.getMessage().contains("gated") && none.getMessage().contains("HTTP 401 GatedRepo")
                && none.getMessage().contains("set HF_TOKEN"), none.getMessage());
        HubException wrong = assertThrows(HubException.class, () -> resolve("hf:org/gated", "HF_TOKEN", "hf_someone_else"));
        assertTrue(wrong.getMessage().contains("HTTP 403 GatedRepo") && wrong.getMessage().contains("the token from HF_TOKEN was refused"), wrong.getMessage());

        Path home = cache.resolveSibling("hf-home");
        Files.createDirectories(home);
        Files.writeString(home.resolve("token"), TinyHub.TOKEN + "\n");
        Path snapshot = resolve("hf:org/gated");
        assertEquals(forward(TinyHub.GQA).out(), forward(snapshot).out());
        for (FakeHub.Request r : tiny.hub.requests()) {
            if (r.path().startsWith("/cdn/")) assertEquals(null, r.authorization(), "no token to the CDN: " + r);
            else if (r.host().startsWith("127.0.0.1") && r.authorization() != null) assertTrue(r.authorization().startsWith("Bearer "), r.toString());
        }
        assertTrue(tiny.hub.requests().stream().anyMatch(r -> ("Bearer " + TinyHub.TOKEN).equals(r.authorization())), "the token file's token was sent");
    }

    @Test
    void missingRepositoriesRevisionsFilesAndWeightsAreErrorsNamingThem() throws Exception {
        HubException repo = assertThrows(HubException.class, () -> resolve("hf:org/nope"));
        assertTrue(repo.getMessage().contains("repository org/nope not found at " + tiny.hub.endpoint()) && repo.getMessage().contains("HTTP 401 RepoNotFound")
                && repo.getMessage().contains("HF_TOKEN"), repo.getMessage());
        HubException rev = assertThrows(HubException.class, () -> resolve("hf:org/tiny@no-such-branch"));
        assertTrue(rev.getMessage().contains("revision 'no-such-branch' is not a branch, tag or commit of org/tiny") && rev.getMessage().contains("RevisionNotFound"),
                rev.getMessage());
        tiny.hub.vanished.add("tokenizer.json");
        HubException file = assertThrows(HubException.class, () -> resolve("hf:org/tiny"));
        assertTrue(file.getMessage().contains("hf:org/tiny@main, file tokenizer.json") && file.getMessage().contains("has no file 'tokenizer.json'")
                && file.getMessage().contains("404 EntryNotFound"), file.getMessage());
        HubException bin = assertThrows(HubException.class, () -> resolve("hf:org/bin-only"));
        assertTrue(bin.getMessage().contains("neither model.safetensors nor model.safetensors.index.json") && bin.getMessage().contains("[pytorch_model.bin]"),
                bin.getMessage());
    }

    @Test
    void offlineWithoutTheFilesIsAnErrorNamingWhatToDownload() throws Exception {
        HubException never = assertThrows(HubException.class, () -> resolve("hf:org/tiny", "HF_HUB_OFFLINE", "true"));
        assertTrue(never.getMessage().contains("offline (HF_HUB_OFFLINE is set)") && never.getMessage().contains("no refs/main")
                && never.getMessage().contains("config.json") && never.getMessage().contains("model.safetensors"), never.getMessage());
        assertEquals(0, tiny.hub.requests().size());

        Path snapshot = resolve("hf:org/tiny");
        Files.delete(snapshot.resolve("model.safetensors"));
        HubException partial = assertThrows(HubException.class, () -> resolve("hf:org/tiny", "HF_HUB_OFFLINE", "1"));
        assertTrue(partial.getMessage().contains("holds commit " + tiny.main) && partial.getMessage().contains("without [model.safetensors"), partial.getMessage());

        tiny.hub.close();
        HubException down = assertThrows(HubException.class, () -> HubModels.resolve(ModelName.parse("hf:org/tiny@v1"), tiny.settings(cache, log)));
        assertTrue(down.getMessage().contains("cannot reach " + tiny.hub.endpoint()) && down.getMessage().contains("no refs/v1"), down.getMessage());
    }

    @Test
    void aRenamedRepositoryIsFollowedThroughTheHubsRelativeRedirects() throws Exception {
        Path snapshot = resolve("hf:old-org/tiny");
        assertEquals(cache.resolve("models--old-org--tiny/snapshots").resolve(tiny.main), snapshot);
        assertEquals(forward(TinyHub.GQA).out(), forward(snapshot).out());
    }

    @Test
    void aCachedFileLinkedToAStaleBlobIsLinkedAgainToWhatTheHubLists() throws Exception {
        Path snapshot = resolve("hf:org/tiny");
        String other = tiny.file(tiny.main, "tokenizer.json").etag();
        Files.delete(snapshot.resolve("config.json"));
        Files.createSymbolicLink(snapshot.resolve("config.json"), Path.of("../../blobs/" + other));
        resolve("hf:org/tiny");
        assertEquals(Path.of("../../blobs/" + tiny.file(tiny.main, "config.json").etag()), Files.readSymbolicLink(snapshot.resolve("config.json")));
        Files.writeString(snapshot.resolve("config.json"), "{}", StandardOpenOption.TRUNCATE_EXISTING);
        resolve("hf:org/tiny");
        assertTrue(Arrays.equals(tiny.file(tiny.main, "config.json").bytes(), Files.readAllBytes(snapshot.resolve("config.json"))));
    }
}
