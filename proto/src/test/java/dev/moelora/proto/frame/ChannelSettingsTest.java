package dev.moelora.proto.frame;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.aeron.ChannelUri;
import org.agrona.SystemUtil;
import org.junit.jupiter.api.Test;

/** Channel strings and limits derived from term length and MTU. Must never start a media driver. */
class ChannelSettingsTest {
    @Test
    void theMaximumMessageIsAnEighthOfTheTerm() {
        assertEquals(2 << 20, ChannelSettings.defaults().maxMessageLength());
        assertEquals(8 << 10, new ChannelSettings(64 << 10, 1408).maxMessageLength());
    }

    @Test
    void channelsCarryTermLengthAndMtu() {
        ChannelUri ipc = ChannelUri.parse(ChannelSettings.defaults().ipc());
        assertEquals("ipc", ipc.media());
        assertEquals(16 << 20, SystemUtil.parseSize("term-length", ipc.get("term-length")));
        assertEquals(65504, SystemUtil.parseSize("mtu", ipc.get("mtu")));

        ChannelUri udp = ChannelUri.parse(new ChannelSettings(1 << 20, 8192).udp("127.0.0.1", 40123));
        assertEquals("udp", udp.media());
        assertEquals("127.0.0.1:40123", udp.get("endpoint"));
        assertEquals(1 << 20, SystemUtil.parseSize("term-length", udp.get("term-length")));
        assertEquals(8192, SystemUtil.parseSize("mtu", udp.get("mtu")));
    }

    @Test
    void termLengthsAndMtusAeronWouldRefuseAreRejectedUpFront() {
        assertThrows(IllegalArgumentException.class, () -> new ChannelSettings(3 << 20, 1408));
        assertThrows(IllegalArgumentException.class, () -> new ChannelSettings(32 << 10, 1408));
        assertThrows(IllegalArgumentException.class, () -> new ChannelSettings(1 << 20, 1400));
        assertThrows(IllegalArgumentException.class, () -> new ChannelSettings(1 << 20, 65536));
    }
}
