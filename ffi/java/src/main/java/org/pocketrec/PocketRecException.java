package org.pocketrec;

/**
 * A failed pocketrec call: the C API's status code and its message.
 *
 * <p>The status codes are those of {@code pocketrec_status} in {@code pocketrec.h}.
 */
public final class PocketRecException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /**
     * A null argument, a closed handle, a bad length, a user vector of the wrong dimension, an
     * invalid fold-in query (a negative weight, nothing to solve from).
     */
    public static final int INVALID_ARGUMENT = 1;
    /** The operating system refused to open, stat or map the file. */
    public static final int IO = 2;
    /** The bytes are not a valid {@code .prec} model, or the part read is corrupt. */
    public static final int FORMAT = 3;
    /** No user or item with that id. */
    public static final int NOT_FOUND = 4;
    /** An output buffer is too small (not raised by this class's methods, which size them). */
    public static final int BUFFER_TOO_SMALL = 5;
    /** A bug in pocketrec, caught at the native boundary. */
    public static final int PANIC = 6;
    /**
     * The call cannot serve this model: id-based calls above 512 dimensions, fold-in on a
     * model without a fold-in section, {@code findItem} on a model of integer item ids.
     */
    public static final int UNSUPPORTED = 7;
    /** A signature was required and the file carries none. */
    public static final int UNSIGNED = 8;
    /** The file is signed by another key than the one given. */
    public static final int WRONG_KEY = 9;
    /** The file (or its signature) was changed after signing. */
    public static final int TAMPERED = 10;
    /** The patch was made for another base file; nothing was written. */
    public static final int WRONG_BASE = 11;
    /** Not a valid patch, or it does not give the file it names; nothing was written. */
    public static final int BAD_PATCH = 12;

    private final int status;

    /**
     * Creates the exception (called by the native code).
     *
     * @param status the {@code pocketrec_status} code
     * @param message the library's message
     */
    public PocketRecException(int status, String message) {
        super(message + " (pocketrec status " + status + ")");
        this.status = status;
    }

    /**
     * The {@code pocketrec_status} code of the failure.
     *
     * @return one of the constants of this class
     */
    public int status() {
        return status;
    }
}
