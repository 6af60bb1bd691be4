package dev.moelora.proto.frame;

import io.aeron.ChannelUriStringBuilder;
import io.aeron.logbuffer.FrameDescriptor;

/**
 * Term length and MTU of tensor-frame channels, and the Aeron channel strings built from them. The
 * maximum message on a channel is term length / 8 (2 MiB on the default 16 MiB term); larger tensors
 * are chunked by {@link TensorFrameSender}.
 *
 * <p>Must never build a channel Aeron would refuse: the values are checked here, where the mistake is.
 */
public record ChannelSettings(int termLength, int mtu) {
    public static final int DEFAULT_TERM_LENGTH = 16 << 20;
    /** The largest MTU Aeron takes (64 KiB less headers, a multiple of 32); DESIGN.md: ~3x loopback UDP throughput over the default 1408. */
    public static final int DEFAULT_MTU = 65504;
    private static final int MIN_TERM_LENGTH = 64 << 10;
    private static final int MAX_TERM_LENGTH = 1 << 30;

    public ChannelSettings {
        if (Integer.bitCount(termLength) != 1 || termLength < MIN_TERM_LENGTH || termLength > MAX_TERM_LENGTH) {
            throw new IllegalArgumentException("term length must be a power of two in [64 KiB, 1 GiB], got " + termLength);
        }
        if (mtu % FrameDescriptor.FRAME_ALIGNMENT != 0 || mtu < 64 || mtu > DEFAULT_MTU) {
            throw new IllegalArgumentException("mtu must be a multiple of 32 in [64, 65504], got " + mtu);
        }
    }

    public static ChannelSettings defaults() {
        return new ChannelSettings(DEFAULT_TERM_LENGTH, DEFAULT_MTU);
    }

    /** Within one host: {@code aeron:ipc?term-length=...|mtu=...}. */
    public String ipc() {
        return new ChannelUriStringBuilder().media("ipc").termLength(termLength).mtu(mtu).build();
    }

    /** Across hosts: {@code aeron:udp?endpoint=host:port|term-length=...|mtu=...}; the same string serves publisher and subscriber. */
    public String udp(String host, int port) {
        return new ChannelUriStringBuilder().media("udp").endpoint(host + ":" + port).termLength(termLength).mtu(mtu).build();
    }

    /** Aeron's limit for one message on these channels: term length / 8, at most 16 MiB. */
    public int maxMessageLength() {
        return FrameDescriptor.computeMaxMessageLength(termLength);
    }
}
