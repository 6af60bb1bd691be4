package dev.moelora.cluster.hub;

import java.io.IOException;

/**
 * A model that could not be had from the Hub or the cache, with a message that names the repo,
 * the revision and the file, and what to do about it. An IOException, so the command line prints
 * the message and exits 2.
 */
public class HubException extends IOException {
    public HubException(String message) {
        super(message);
    }

    public HubException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The Hub could not be reached (connection refused or timed out, or a 5xx answer): the cache may still serve. */
    static final class Unreachable extends HubException {
        Unreachable(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
