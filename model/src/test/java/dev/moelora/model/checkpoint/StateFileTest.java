package dev.moelora.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.model.moelora.MoeLora;
import dev.moelora.model.optim.AdamW;
import dev.moelora.model.optim.Parameter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** State files: which file a tensor goes to, a bit-exact round trip, and every way a file can be wrong, named. */
class StateFileTest {
    @TempDir
    Path dir;

    static final String MODULE = "encoder.layer.0.attention.self.query";

    /** A gate, a head and two experts' A and B, with non-trivial values and AdamW state after two steps. */
    static List<Parameter> params(long seed) {
        Nd4j.getRandom().setSeed(seed);
        return List.of(
                new Parameter(MODULE + ".moe_gate", Nd4j.rand(DataType.FLOAT, 2, 4)),
                new Parameter(MoeLora.aName(MODULE, 0), Nd4j.rand(DataType.FLOAT, 1, 4)),
                new Parameter(MoeLora.bName(MODULE, 0), Nd4j.rand(DataType.FLOAT, 4, 1)),
                new Parameter(MoeLora.aName(MODULE, 1), Nd4j.rand(DataType.FLOAT, 1, 4)),
                new Parameter(MoeLora.bName(MODULE, 1), Nd4j.rand(DataType.FLOAT, 4, 1)),
                new Parameter("head.choice.weight", Nd4j.rand(DataType.FLOAT, 4, 1)));
    }

    static AdamW trained(List<Parameter> params) {
        AdamW opt = AdamW.withDefaults(params, 0.01);
        for (int s = 0; s < 2; s++) {
            for (Parameter p : params) p.grad().assign(p.value().mul(0.3 + s));
            opt.step(1e-2);
        }
        return opt;
    }

    static int[] bits(INDArray a) {
        float[] f = a.dup('c').data().asFloat();
        int[] out = new int[f.length];
        for (int i = 0; i < f.length; i++) out[i] = Float.floatToRawIntBits(f[i]);
        return out;
    }

    @Test
    void expertTensorsGoToTheirExpertsFileAndEverythingElseToTheTrunk() {
        assertEquals(OptionalInt.of(3), StateFile.expertOf(MoeLora.aName(MODULE, 3)));
        assertEquals(OptionalInt.of(12), StateFile.expertOf(MoeLora.bName("model.layers.1.mlp.down_proj", 12)));
        for (String trunk : List.of(MODULE + ".moe_gate", MODULE + ".lora_A", "head.choice.weight", "tied.A.query")) {
            assertEquals(OptionalInt.empty(), StateFile.expertOf(trunk), trunk);
            assertEquals(StateFile.TRUNK, StateFile.fileOf(trunk));
        }
        Map<String, List<Parameter>> split = StateFile.split(params(1));
        assertEquals(List.of("trunk.safetensors", "expert-0.safetensors", "expert-1.safetensors"), List.copyOf(split.keySet()));
        assertEquals(List.of(MODULE + ".moe_gate", "head.choice.weight"), split.get(StateFile.TRUNK).stream().map(Parameter::name).toList());
        assertEquals(List.of(MoeLora.aName(MODULE, 1), MoeLora.bName(MODULE, 1)),
                split.get("expert-1.safetensors").stream().map(Parameter::name).toList());
    }

    @Test
    void allStateRoundTripsBitForBit() throws IOException {
        List<Parameter> saved = params(1);
        AdamW opt = trained(saved);
        List<FileDigest> files = StateFile.writeAll(dir, saved, opt);
        assertEquals(3, files.size());
        for (FileDigest d : files) {
            assertEquals(Files.size(dir.resolve(d.name())), d.size());
            assertTrue(d.sha256().matches("[0-9a-f]{64}"), d.sha256());
        }
        try (var listing = Files.list(dir)) {
            assertEquals(3, listing.count(), "no temporary file left behind");
        }

        List<Parameter> loaded = params(2);
        AdamW restored = AdamW.withDefaults(loaded, 0.01);
        assertEquals(2, StateFile.readAll(dir, files, loaded, restored));
        assertEquals(2, restored.steps());
        for (int i = 0; i < saved.size(); i++) {
            assertArrayEquals(bits(saved.get(i).value()), bits(loaded.get(i).value()), saved.get(i).name());
            assertArrayEquals(bits(opt.moments().get(i).first()), bits(restored.moments().get(i).first()), saved.get(i).name() + " m");
            assertArrayEquals(bits(opt.moments().get(i).second()), bits(restored.moments().get(i).second()), saved.get(i).name() + " v");
        }
        Map<String, INDArray> weights = StateFile.readParameters(dir.resolve(StateFile.TRUNK), files.get(0));
        assertEquals(List.of(MODULE + ".moe_gate", "head.choice.weight"), List.copyOf(weights.keySet()), "parameters only, no moments");
        assertEquals(files, StateFile.writeAll(dir, saved, opt), "the same state gives the same bytes");
    }

    private FileDigest writeTrunk(List<Parameter> params) throws IOException {
        return StateFile.write(dir.resolve(StateFile.TRUNK), params, trained(params).moments(), 2);
    }

    private IOException readFails(FileDigest digest, List<Parameter> into) {
        float before = into.get(0).value().getFloat(0);
        IOException e = assertThrows(IOException.class,
                () -> StateFile.read(dir.resolve(StateFile.TRUNK), digest, into, new HashMap<>(), new HashMap<>()));
        assertTrue(e.getMessage().contains(dir.resolve(StateFile.TRUNK).toString()), "names the file: " + e.getMessage());
        assertEquals(before, into.get(0).value().getFloat(0), "nothing assigned from a bad file");
        return e;
    }

    @Test
    void aFlippedByteIsCaughtByTheHashBeforeAnyTensorIsUsed() throws IOException {
        FileDigest d = writeTrunk(params(1).subList(0, 1));
        Path file = dir.resolve(StateFile.TRUNK);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer one = ByteBuffer.allocate(1);
            long at = ch.size() - 3; // inside the last tensor's data
            ch.read(one, at);
            one.put(0, (byte) (one.get(0) ^ 0x10)).rewind();
            ch.write(one, at);
        }
        String actual = FileDigest.of(file).sha256();
        IOException e = readFails(d, params(2).subList(0, 1));
        assertTrue(e.getMessage().contains(d.sha256()) && e.getMessage().contains(actual), e.getMessage());
    }

    @Test
    void aTruncatedOrMissingFileNamesTheSizes() throws IOException {
        FileDigest d = writeTrunk(params(1).subList(0, 1));
        Path file = dir.resolve(StateFile.TRUNK);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(d.size() - 8);
        }
        IOException truncated = readFails(d, params(2).subList(0, 1));
        assertTrue(truncated.getMessage().contains((d.size() - 8) + " bytes, expected " + d.size() + " bytes"), truncated.getMessage());
        Files.delete(file);
        IOException missing = readFails(d, params(2).subList(0, 1));
        assertTrue(missing.getMessage().contains("missing"), missing.getMessage());
    }

    @Test
    void missingMisshapenAndUnexpectedTensorsAreNamed() throws IOException {
        List<Parameter> two = params(1).subList(0, 2);
        FileDigest d = writeTrunk(two);

        List<Parameter> three = params(2).subList(0, 3);
        IOException missing = readFails(d, three);
        assertTrue(missing.getMessage().contains("no tensor '" + MoeLora.bName(MODULE, 0) + "'"), missing.getMessage());

        List<Parameter> one = params(2).subList(0, 1);
        IOException unexpected = readFails(d, one);
        assertTrue(unexpected.getMessage().contains(MoeLora.aName(MODULE, 0) + ", " + MoeLora.aName(MODULE, 0) + ".exp_avg"),
                unexpected.getMessage());

        List<Parameter> wide = List.of(new Parameter(MODULE + ".moe_gate", Nd4j.zeros(DataType.FLOAT, 3, 4)), params(2).get(1));
        IOException misshapen = readFails(d, wide);
        assertTrue(misshapen.getMessage().contains("'" + MODULE + ".moe_gate' has shape [2, 4], this run expects [3, 4]"),
                misshapen.getMessage());
    }

    @Test
    void aCheckpointWithOtherFilesThanThisRunsIsRefusedNamingThem() throws IOException {
        List<Parameter> saved = params(1);
        List<FileDigest> files = StateFile.writeAll(dir, saved, trained(saved));
        List<Parameter> fewerExperts = params(2).subList(0, 3).stream().toList();
        List<Parameter> withHead = new java.util.ArrayList<>(fewerExperts);
        withHead.add(params(2).get(5));
        IOException extra = assertThrows(IOException.class, () -> StateFile.readAll(dir, files, withHead, AdamW.withDefaults(withHead, 0)));
        assertTrue(extra.getMessage().contains("expert-1.safetensors: holds tensors no parameter of this run belongs to"), extra.getMessage());
        IOException absent = assertThrows(IOException.class,
                () -> StateFile.readAll(dir, files.subList(0, 2), saved, AdamW.withDefaults(saved, 0)));
        assertTrue(absent.getMessage().contains("no expert-1.safetensors"), absent.getMessage());
    }

    @Test
    void aFileWithoutTheOptimizerStepCountIsRefused() throws IOException {
        Path file = dir.resolve(StateFile.TRUNK);
        Parameter p = params(1).get(0);
        dev.moelora.model.safetensors.Safetensors.write(file, Map.of(p.name(), p.value(), p.name() + ".exp_avg", p.value(),
                p.name() + ".exp_avg_sq", p.value()), Map.of("format", "moelora-state"));
        IOException e = readFails(FileDigest.of(file), List.of(new Parameter(p.name(), Nd4j.zeros(DataType.FLOAT, 2, 4))));
        assertTrue(e.getMessage().contains("optimizer_steps"), e.getMessage());
    }
}
