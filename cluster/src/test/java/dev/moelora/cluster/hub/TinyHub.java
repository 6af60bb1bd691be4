package dev.moelora.cluster.hub;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * The repositories the Hub tests serve, built from the committed tiny checkpoints (read from the
 * model module's test resources): org/tiny, whose main holds gqa-f32 with the files a Hub repo also
 * has and a checkpoint must not download (pytorch_model.bin, onnx/model.onnx, README.md), and whose
 * tag v1 holds sharded-f16 (an index and two shards); org/gated, the same behind a token; org/bin-only,
 * with no safetensors; and old-org/tiny, renamed to org/tiny.
 */
final class TinyHub {
    static final Path GQA = Path.of("../model/src/test/resources/llama/gqa-f32");
    static final Path SHARDED = Path.of("../model/src/test/resources/llama/sharded-f16");
    static final String TOKEN = "hf_test_token_for_the_gated_repo";

    final FakeHub hub;
    final String main, v1, gated;

    TinyHub() throws IOException {
        hub = new FakeHub();
        Map<String, byte[]> tiny = FakeHub.files(GQA, "config.json", "model.safetensors", "tokenizer.json");
        tiny.put("generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": 2, \"max_new_tokens\": 16}\n".getBytes(StandardCharsets.UTF_8));
        tiny.put("tokenizer_config.json", "{\"model_max_length\": 64, \"add_bos_token\": true}\n".getBytes(StandardCharsets.UTF_8));
        tiny.put("README.md", "# tiny\nA two-layer LLaMA for tests.\n".getBytes(StandardCharsets.UTF_8));
        tiny.put(".gitattributes", "*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n".getBytes(StandardCharsets.UTF_8));
        tiny.put("pytorch_model.bin", random(3000, 1));
        tiny.put("onnx/model.onnx", random(2000, 2));
        Map<String, byte[]> sharded = FakeHub.files(SHARDED, "config.json", "model.safetensors.index.json",
                "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
        FakeHub.Repo repo = hub.repo("org/tiny");
        v1 = repo.commit("v1", sharded);
        main = repo.commit("main", tiny);
        FakeHub.Repo g = hub.repo("org/gated");
        g.token = TOKEN;
        gated = g.commit("main", FakeHub.files(GQA, "config.json", "model.safetensors", "tokenizer.json"));
        Map<String, byte[]> binOnly = new LinkedHashMap<>(FakeHub.files(GQA, "config.json"));
        binOnly.put("pytorch_model.bin", random(3000, 3));
        hub.repo("org/bin-only").commit("main", binOnly);
        hub.renamed.put("old-org/tiny", "org/tiny");
    }

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    FakeHub.Blob file(String commit, String name) {
        return hub.repos.get(commit.equals(gated) ? "org/gated" : "org/tiny").commits.get(commit).get(name);
    }

    /** Settings as this environment would give them, on top of a cache and the fake Hub; what is logged goes to {@code log}. */
    HubSettings settings(Path cache, ByteArrayOutputStream log, String... env) throws IOException {
        Map<String, String> e = new HashMap<>(Map.of("HF_HUB_CACHE", cache.toString(), "HF_ENDPOINT", hub.endpoint(),
                "HF_HOME", cache.resolveSibling("hf-home").toString()));
        for (int i = 0; i < env.length; i += 2) e.put(env[i], env[i + 1]);
        return HubSettings.fromEnvironment(e, cache.resolveSibling("home"), new PrintStream(log, true, StandardCharsets.UTF_8), false);
    }
}
