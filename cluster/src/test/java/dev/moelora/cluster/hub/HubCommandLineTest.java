package dev.moelora.cluster.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.moelora.cluster.cli.DecoderCommandsTest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line with a model named on the Hub, in its own JVM so it reads its settings from a
 * real environment (HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE): {@code forward --model hf:org/tiny}
 * prints what {@code forward --model <the committed directory>} prints, first filling the cache,
 * then with the Hub stopped; and {@code train --set model.path=hf:org/tiny} trains offline from
 * that cache.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class HubCommandLineTest {
    @TempDir
    Path dir;

    record Child(int exit, String out, String err) {}

    private Child moelora(Map<String, String> env, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
                "-cp", System.getProperty("java.class.path"), "dev.moelora.cluster.Main"));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(dir, "out", ".txt"), err = Files.createTempFile(dir, "err", ".txt");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        for (String k : List.of("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT")) {
            pb.environment().remove(k);
        }
        pb.environment().putAll(env);
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        Process p = pb.start();
        try {
            if (!p.waitFor(120, TimeUnit.SECONDS)) fail("moelora " + String.join(" ", args) + " did not finish within 120 s: " + Files.readString(err));
        } finally {
            p.destroyForcibly();
        }
        return new Child(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    @Test
    void forwardByNameEqualsForwardOnTheDirectoryOnlineThenWithTheHubStoppedAndTrainReadsModelPathOffline() throws Exception {
        TinyHub tiny = new TinyHub();
        Map<String, String> env = new HashMap<>(Map.of("HF_ENDPOINT", tiny.hub.endpoint(), "HF_HUB_CACHE", dir.resolve("cache").toString(),
                "HF_HOME", dir.resolve("hf-home").toString()));
        DecoderCommandsTest.Run local = DecoderCommandsTest.moelora("forward", "--model", TinyHub.GQA.toString(), "--ids", "1,5,9,22");
        assertEquals(0, local.exit(), local.err());
        Child online;
        try {
            online = moelora(env, "forward", "--model", "hf:org/tiny", "--ids", "1,5,9,22");
        } finally {
            tiny.hub.close();
        }
        assertEquals(0, online.exit(), online.err());
        assertEquals(local.out(), online.out());
        assertTrue(online.err().contains("hf:org/tiny@main is commit " + tiny.main) && online.err().contains("model.safetensors (68.7 KB) downloaded"), online.err());

        Child stopped = moelora(env, "forward", "--model", "hf:org/tiny", "--ids", "1,5,9,22");
        assertEquals(0, stopped.exit(), stopped.err());
        assertEquals(local.out(), stopped.out());
        assertTrue(stopped.err().contains("cannot reach " + tiny.hub.endpoint()) && stopped.err().contains("using the cached snapshot"), stopped.err());

        Path train = dir.resolve("train.json");
        Files.writeString(train, "[{\"instruction\": \"What is 1 + 2?\", \"input\": \"\", \"output\": \"3\"},"
                + " {\"instruction\": \"What is 2 + 2?\", \"input\": \"\", \"output\": \"4\"}]");
        env.put("HF_HUB_OFFLINE", "1");
        Child trained = moelora(env, "train", "--set", "model.name=llama", "--set", "model.path=hf:org/tiny", "--set", "data.source=instructions",
                "--set", "data.instructions.file=" + train, "--set", "data.instructions.max-length=32", "--set", "data.instructions.eval-tasks=[]",
                "--set", "adapter.type=lora", "--set", "adapter.targets=[q_proj,v_proj]", "--set", "train.steps=2", "--set", "train.batch-size=2",
                "--set", "train.warmup-steps=0", "--set", "checkpoint.every=0", "--set", "dashboard.port=0",
                "--set", "run.dir=" + dir.resolve("runs"), "--set", "run.name=hub");
        assertEquals(0, trained.exit(), trained.err() + trained.out());
        assertTrue(trained.err().contains("offline (HF_HUB_OFFLINE is set)"), trained.err());
        assertTrue(Files.isRegularFile(dir.resolve("runs/hub/adapter/adapter_model.safetensors")), trained.out());
    }
}
