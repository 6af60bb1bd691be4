package dev.moelora.cluster.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.moelora.cluster.config.RunConfig;
import dev.moelora.proto.frame.IdleSettings;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** runtime.driver-idle-max-park and runtime.poll-idle-max-park reach the data plane, and the shipped defaults are the code's. */
class IdleSettingsConfigTest {
    @Test
    void theShippedDefaultsAreTheDataPlanesDefaults() {
        // the benchmarks and tests that build a data plane without a configuration use IdleSettings.defaults()
        assertEquals(IdleSettings.defaults(), Nodes.idle(RunConfig.parse("")));
    }

    @Test
    void bothKeysAreRead() {
        IdleSettings idle = Nodes.idle(RunConfig.parse("runtime.driver-idle-max-park = 20us\nruntime.poll-idle-max-park = 3ms"));
        assertEquals(new IdleSettings(Duration.ofNanos(20_000), Duration.ofMillis(3)), idle);
    }

    @Test
    void aBusySpinIsRefusedNamingTheKeys() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Nodes.idle(RunConfig.parse("runtime.poll-idle-max-park = 0us")));
        assertTrue(e.getMessage().contains("runtime.poll-idle-max-park") && e.getMessage().contains("PT0S"), e.getMessage());
    }
}
