package dev.moelora.cluster.observe;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.List;

/**
 * Where a run's records go as they happen: the JSONL files of the run directory, TensorBoard event
 * files, the live dashboard. A recorder must not keep the line object beyond the call unless it
 * copies it, and must never change it (several recorders receive the same object).
 */
public interface RunRecorder extends AutoCloseable {
    void record(RecordStream stream, ObjectNode line);

    /**
     * The run goes back to the end of step {@code step} (a resume or a recovery restored that
     * step's checkpoint): records of later steps are void and will be recorded again.
     */
    default void rewind(int step) throws IOException {}

    @Override
    default void close() throws IOException {}

    /** Every record goes to each recorder in turn, in the order given; closing closes them all. */
    static RunRecorder all(List<RunRecorder> recorders) {
        List<RunRecorder> list = List.copyOf(recorders);
        return new RunRecorder() {
            @Override
            public void record(RecordStream stream, ObjectNode line) {
                for (RunRecorder r : list) r.record(stream, line);
            }

            @Override
            public void rewind(int step) throws IOException {
                for (RunRecorder r : list) r.rewind(step);
            }

            @Override
            public void close() throws IOException {
                IOException first = null;
                for (RunRecorder r : list) {
                    try {
                        r.close();
                    } catch (Exception e) {
                        if (first == null) first = e instanceof IOException io ? io : new IOException(e);
                        else first.addSuppressed(e);
                    }
                }
                if (first != null) throw first;
            }
        };
    }
}
