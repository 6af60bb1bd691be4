package dev.moelora.cluster.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moelora.cluster.cli.DecoderCommandsTest;
import dev.moelora.cluster.tensorboard.PythonScript;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Our cache and our test Hub against huggingface_hub itself (cluster/src/test/python/hf_hub_check.py):
 * offline, huggingface_hub finds every file of the snapshots we downloaded (snapshot_download and
 * hf_hub_download with local_files_only), its scan_cache_dir sees our refs and revisions without a
 * warning, and its verify_repo_checksums finds every file we hold matching the Hub; and its own
 * snapshot_download through FakeHub (so FakeHub answers as the Hub does) fills a cache that we then
 * use offline. Optional: it needs a Python with huggingface_hub, named by MOELORA_HF_PYTHON or
 * -Dmoelora.hf.python; without one it is skipped, saying why.
 */
@Timeout(value = 4, unit = TimeUnit.MINUTES)
class HuggingFaceHubCrossCheckTest {
    static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static String python;

    @TempDir
    Path dir;
    TinyHub tiny;
    final ByteArrayOutputStream log = new ByteArrayOutputStream();

    @BeforeAll
    static void findPythonWithHuggingFaceHub() throws Exception {
        python = System.getProperty("moelora.hf.python", System.getenv("MOELORA_HF_PYTHON"));
        assumeTrue(python != null && !python.isBlank(), "MOELORA_HF_PYTHON (or -Dmoelora.hf.python) is unset: huggingface_hub is not tried");
        PythonScript.Result r;
        try {
            r = PythonScript.run(List.of(python, "-c", "import huggingface_hub"), TIMEOUT);
        } catch (IOException e) {
            assumeTrue(false, "MOELORA_HF_PYTHON: " + e.getMessage());
            return;
        }
        String[] said = r.stderr().strip().split("\n");
        assumeTrue(r.exit() == 0, python + " (MOELORA_HF_PYTHON) cannot import huggingface_hub: " + said[said.length - 1]);
    }

    @BeforeEach
    void startHub() throws Exception {
        tiny = new TinyHub();
    }

    @AfterEach
    void stopHub() {
        tiny.hub.close();
    }

    private JsonNode check(Path cache, boolean offline, String... args) throws Exception {
        Map<String, String> env = new HashMap<>();
        env.put("HF_HUB_CACHE", cache.toString());
        env.put("HF_HOME", dir.resolve("py-home").toString());
        env.put("HF_ENDPOINT", tiny.hub.endpoint());
        env.put("HF_HUB_DISABLE_XET", "1");
        env.put("HF_HUB_DISABLE_TELEMETRY", "1");
        env.put("HF_HUB_OFFLINE", offline ? "1" : null);
        env.put("HF_TOKEN", null);
        List<String> command = new ArrayList<>(List.of(python, PythonScript.SCRIPTS.resolve("hf_hub_check.py").toString()));
        command.addAll(List.of(args));
        PythonScript.Result r = PythonScript.run(command, env, TIMEOUT);
        assertEquals(0, r.exit(), r.describe());
        String[] lines = r.stdout().strip().split("\n");
        return JSON.readTree(lines[lines.length - 1]);
    }

    @Test
    void huggingFaceHubReadsOurCacheOfflineAndFindsItIntactAtTheHub() throws Exception {
        Path cache = dir.resolve("ours");
        Path main = HubModels.resolve(ModelName.parse("hf:org/tiny"), tiny.settings(cache, log));
        Path v1 = HubModels.resolve(ModelName.parse("hf:org/tiny@v1"), tiny.settings(cache, log));
        int requests = tiny.hub.requests().size();

        JsonNode read = check(cache, true, "read", "org/tiny", "main", "config.json", "model.safetensors", "tokenizer.json", "generation_config.json");
        assertEquals(main.toString(), read.get("snapshot").asText());
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "generation_config.json")) {
            assertEquals(main.resolve(f).toString(), read.get("files").get(f).get(0).asText(), f);
            assertEquals(tiny.file(tiny.main, f).sha256(), read.get("files").get(f).get(1).asText(), f);
        }
        assertEquals("[]", read.get("warnings").toString(), "scan_cache_dir finds nothing wrong with our cache");
        JsonNode repo = read.get("scan").get("org/tiny");
        assertEquals("[\"main\",\"v1\"]", repo.get("refs").toString());
        assertEquals("[\"config.json\",\"model-00001-of-00002.safetensors\",\"model-00002-of-00002.safetensors\",\"model.safetensors.index.json\"]",
                repo.get("revisions").get(tiny.v1).toString());
        assertEquals(v1.toString(), check(cache, true, "read", "org/tiny", "v1", "model.safetensors.index.json").get("snapshot").asText());
        assertEquals(requests, tiny.hub.requests().size(), "huggingface_hub offline sent no request");

        JsonNode verified = check(cache, false, "verify", "org/tiny", "main");
        assertEquals(5, verified.get("verified").asInt(), verified.toString());
        assertEquals("[]", verified.get("mismatches").toString(), "huggingface_hub finds every file we hold matching the Hub's hashes");
        assertEquals("[\".gitattributes\",\"README.md\",\"onnx/model.onnx\",\"pytorch_model.bin\"]", verified.get("missing_locally").toString(),
                "and we hold exactly the checkpoint's files");
    }

    @Test
    void huggingFaceHubDownloadsThroughOurTestHubAndWeUseTheCacheItWroteOffline() throws Exception {
        Path cache = dir.resolve("theirs");
        JsonNode downloaded = check(cache, false, "download", "org/tiny", "main");
        Path snapshot = cache.resolve("models--org--tiny/snapshots").resolve(tiny.main);
        assertEquals(snapshot.toString(), downloaded.get("snapshot").asText());
        assertEquals(9, downloaded.get("verified").asInt(), downloaded.toString());
        assertEquals("[]", downloaded.get("mismatches").toString());
        assertTrue(tiny.hub.requests().stream().anyMatch(r -> r.path().startsWith("/cdn/") && r.host().startsWith("localhost")),
                "huggingface_hub followed the 302 to the CDN");

        int requests = tiny.hub.requests().size();
        Path ours = HubModels.resolve(ModelName.parse("hf:org/tiny"), tiny.settings(cache, log, "HF_HUB_OFFLINE", "1"));
        assertEquals(snapshot, ours);
        assertEquals(requests, tiny.hub.requests().size());
        String logged = log.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(logged.contains("model.safetensors (68.7 KB) in the cache, SHA-256 checked") && logged.contains("config.json (588 B) in the cache, git blob SHA-1 checked"),
                logged);
        DecoderCommandsTest.Run a = DecoderCommandsTest.moelora("forward", "--model", ours.toString(), "--ids", "1,5,9,22");
        DecoderCommandsTest.Run b = DecoderCommandsTest.moelora("forward", "--model", TinyHub.GQA.toString(), "--ids", "1,5,9,22");
        assertEquals(0, a.exit(), a.err());
        assertEquals(b.out(), a.out());

        HubModels.resolve(ModelName.parse("hf:org/tiny"), tiny.settings(cache, log));
        assertEquals(requests + 1, tiny.hub.requests().size(), "online, the blobs huggingface_hub wrote are ours too: only the revision call");
    }
}
