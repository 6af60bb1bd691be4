package dev.moelora.proto.frame;

import java.time.Duration;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * How the data plane's busy loops wait when a pass found no work: the embedded media driver's one
 * thread ({@link DataPlane}) and the router's and expert node's pollers. Each spins 100 times,
 * yields 10 times, then parks from 1 µs doubling up to its max park, and starts over as soon as a
 * pass does work. A loop parked when a frame arrives sees it up to one max park late, and an
 * exchange crosses several such loops (sender's driver, receiver's driver, poller), so the max park
 * bounds a hop's added latency; a shorter one wakes an idle node more often (more idle CPU). Linux
 * rounds a park up to the thread's timer slack (50 µs by default), so parks below that cost what it
 * does.
 *
 * <p>Must never be a busy spin: on a 2-core machine a spinning data plane starves the trunk's GEMMs.
 */
public record IdleSettings(Duration driverMaxPark, Duration pollMaxPark) {
    /**
     * Chosen by measurement (./moelora bench --runtime on 2 cores, BENCHMARKS.md): with three JVMs
     * on two cores a driver parking at most 100 µs made the distributed step slower (2.1-2.2 s
     * against 1.4-1.6 s at 1 ms): its wake-ups take the cores from the GEMMs. Machines with a core
     * to spare per node may lower it (runtime.driver-idle-max-park).
     */
    public static final Duration DEFAULT_DRIVER_MAX_PARK = Duration.ofMillis(1);
    public static final Duration DEFAULT_POLL_MAX_PARK = Duration.ofNanos(100_000);
    private static final Duration MIN_MAX_PARK = Duration.ofNanos(1_000);
    private static final Duration MAX_MAX_PARK = Duration.ofSeconds(1);

    public IdleSettings {
        check("driver", driverMaxPark);
        check("poll", pollMaxPark);
    }

    public static IdleSettings defaults() {
        return new IdleSettings(DEFAULT_DRIVER_MAX_PARK, DEFAULT_POLL_MAX_PARK);
    }

    /** A fresh strategy for the media driver's thread (strategies keep state: one per loop). */
    public IdleStrategy driver() {
        return backoff(driverMaxPark);
    }

    /** A fresh strategy for one poller. */
    public IdleStrategy poller() {
        return backoff(pollMaxPark);
    }

    private static IdleStrategy backoff(Duration maxPark) {
        return new BackoffIdleStrategy(100, 10, MIN_MAX_PARK.toNanos(), maxPark.toNanos());
    }

    private static void check(String loop, Duration maxPark) {
        if (maxPark.compareTo(MIN_MAX_PARK) < 0 || maxPark.compareTo(MAX_MAX_PARK) > 0) {
            throw new IllegalArgumentException(loop + " idle max park must be in [1 us, 1 s] (a busy spin would starve the compute), got " + maxPark);
        }
    }
}
