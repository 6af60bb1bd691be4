package dev.moelora.model.data;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A dataset file that cannot be read as the format it claims to be. The message always names the file
 * and, when the fault is inside one record, the record's 0-based index in the JSON array and the field,
 * then what was expected: a user must be able to fix the file from the message alone.
 *
 * <p>An {@link IOException} because, to a caller, a malformed file is one more way reading a file fails.
 */
public final class DatasetFormatException extends IOException {

    DatasetFormatException(Path file, String problem) {
        super(file + ": " + problem);
    }

    DatasetFormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }

    DatasetFormatException(Path file, int record, String problem) {
        super(file + ": record " + record + " (0-based): " + problem);
    }

    DatasetFormatException(Path file, int record, String field, String problem) {
        super(file + ": record " + record + " (0-based), field '" + field + "': " + problem);
    }
}
