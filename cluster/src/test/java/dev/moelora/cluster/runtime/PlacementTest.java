package dev.moelora.cluster.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.cluster.cli.Jobs;
import dev.moelora.cluster.job.JobResult;
import dev.moelora.proto.control.DataEndpoint;
import dev.moelora.proto.control.ExpertPlacement;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Where experts go, and the runtime settings that are refused before anything starts. */
class PlacementTest {
    static final List<Placement.Node> NODES = List.of(
            new Placement.Node("a", DataEndpoint.newBuilder().setChannel("aeron:udp?endpoint=127.0.0.1:1").setStream(1000).build(), 2),
            new Placement.Node("b", DataEndpoint.newBuilder().setChannel("aeron:udp?endpoint=127.0.0.1:2").setStream(1000).build(), 0));

    @Test
    void roundRobinSpreadsExpertsOverNodesAndEachNodesDeviceSlots() {
        List<ExpertPlacement> p = Placement.assign(5, NODES, List.of());
        assertEquals(List.of("a", "b", "a", "b", "a"), p.stream().map(ExpertPlacement::getNode).toList());
        // node a has 2 slots: its experts 0, 2, 4 go to slots 0, 1, 0; node b has one slot per expert
        assertEquals(List.of(0, 0, 1, 1, 0), p.stream().map(ExpertPlacement::getDevice).toList());
        assertEquals(List.of("a: expert@slot [0@0, 2@1, 4@0]", "b: expert@slot [1@0, 3@1]"), Placement.describe(p));
    }

    @Test
    void anExplicitPlacementIsTakenAsWrittenAndCheckedEntryByEntry() {
        List<ExpertPlacement> p = Placement.assign(2, NODES, List.of("1=0:1", "0=1:0"));
        assertEquals("b", p.get(0).getNode());
        assertEquals(1, p.get(1).getDevice());
        assertMessage("not expert=node:device", List.of("0=1", "1=0:0"));
        assertMessage("node outside", List.of("0=2:0", "1=0:0"));
        assertMessage("has 2 device slots", List.of("0=0:2", "1=0:0"));
        assertMessage("places expert 0 twice", List.of("0=0:0", "0=1:0"));
        assertMessage("does not place expert 1", List.of("0=0:0"));
        assertMessage("'x' is not a number", List.of("x=0:0", "1=0:0"));
    }

    private static void assertMessage(String part, List<String> spec) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Placement.assign(2, NODES, spec));
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    @Test
    void runtimeSettingsThatCannotWorkAreRefusedBeforeAnythingStarts(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
        IllegalArgumentException lora = assertThrows(IllegalArgumentException.class,
                () -> Jobs.run(RunConfig.load(null, List.of("adapter.type=lora", "runtime.mode=local", "run.dir=" + dir)), quiet, false));
        assertTrue(lora.getMessage().contains("adapter.type lora has no experts"), lora.getMessage());
        IllegalArgumentException resume = assertThrows(IllegalArgumentException.class, () -> Jobs.run(RunConfig.load(null,
                List.of("adapter.type=moelora", "runtime.mode=local", "run.resume-from=somewhere", "run.dir=" + dir)), quiet, false));
        assertTrue(resume.getMessage().contains("run.resume-from must be 'latest' or a checkpoint step directory"), resume.getMessage());
    }
}
