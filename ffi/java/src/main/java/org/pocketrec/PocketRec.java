package org.pocketrec;

import java.io.FileDescriptor;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * A pocketrec model: sparse user and item embeddings, scored and ranked on the device.
 *
 * <p>Backed by {@code libpocketrec.so} built with the {@code jni} feature. Open a model from a
 * file path, from a file descriptor with an offset and a length (what Android's
 * {@code AssetFileDescriptor} gives for an uncompressed asset), or from a direct
 * {@link ByteBuffer}; all three read the model in place, without copying it.
 *
 * <pre>{@code
 * try (AssetFileDescriptor afd = context.getAssets().openFd("model.prec");
 *      PocketRec model = PocketRec.open(afd.getFileDescriptor(),
 *                                       afd.getStartOffset(), afd.getLength())) {
 *     PocketRec.Recommendations top = model.recommend(42L, 20, 7L, 19L);
 *     for (int i = 0; i < top.size(); i++) { show(top.items[i], top.scores[i]); }
 * }
 * }</pre>
 *
 * <p>Threads: every method may be called from any number of threads at once on one instance.
 * Ids are the external ids of the file; Java has no unsigned {@code long}, so ids of 2^63 and
 * above (string-id hashes, typically) are negative here. Failures throw
 * {@link PocketRecException} with the C API's status; a method called after {@link #close()}
 * throws {@link IllegalStateException}.
 *
 * <p>Close the model when done (try-with-resources). It owns a memory map (or borrows the
 * buffer it was opened from), which is released only by {@link #close()}.
 */
public final class PocketRec implements AutoCloseable {
    /** The C ABI version this class was written for. */
    public static final int ABI_VERSION = 1;

    static {
        System.loadLibrary("pocketrec");
        int abi = nativeAbiVersion();
        if (abi != ABI_VERSION) {
            throw new UnsatisfiedLinkError(
                    "libpocketrec has ABI version " + abi + ", this class needs " + ABI_VERSION);
        }
    }

    /** The native handle; 0 once closed. */
    private volatile long handle;
    /** The direct buffer the model reads, kept reachable while the model is open. */
    private final ByteBuffer buffer;

    private PocketRec(long handle, ByteBuffer buffer) {
        this.handle = handle;
        this.buffer = buffer;
    }

    /**
     * Opens the model file at {@code path}, memory-mapped read-only. The file must not be
     * modified in place or truncated while the model is open (replace it by rename instead).
     *
     * @param path the {@code .prec} file
     * @return the open model
     * @throws PocketRecException status IO if the file cannot be opened, FORMAT if it is not a
     *     valid model
     */
    public static PocketRec open(String path) {
        Objects.requireNonNull(path, "path");
        return new PocketRec(nativeOpenPath(path), null);
    }

    /**
     * Opens {@code length} bytes at {@code offset} of an open file, memory-mapped read-only:
     * on Android, {@code afd.getFileDescriptor(), afd.getStartOffset(), afd.getLength()} of an
     * asset stored uncompressed. The descriptor is only used during this call and may be closed
     * afterwards; the offset need not be aligned.
     *
     * @param fd an open file descriptor
     * @param offset where the model starts in the file
     * @param length the model's length in bytes
     * @return the open model
     * @throws PocketRecException status INVALID_ARGUMENT if the range is not inside the file,
     *     IO or FORMAT
     */
    public static PocketRec open(FileDescriptor fd, long offset, long length) {
        Objects.requireNonNull(fd, "fd");
        return open(nativeFdOf(fd), offset, length);
    }

    /**
     * As {@link #open(FileDescriptor, long, long)}, for a raw descriptor number (e.g. from
     * {@code ParcelFileDescriptor.getFd()}).
     *
     * @param fd an open file descriptor number
     * @param offset where the model starts in the file
     * @param length the model's length in bytes
     * @return the open model
     */
    public static PocketRec open(int fd, long offset, long length) {
        return new PocketRec(nativeOpenFd(fd, offset, length), null);
    }

    /**
     * Opens the model held by a direct buffer between its position and its limit, without
     * copying. The buffer's contents must not change while the model is open; the model keeps
     * a reference to it.
     *
     * @param buffer a direct buffer (e.g. a {@code MappedByteBuffer})
     * @return the open model
     * @throws IllegalArgumentException if the buffer is not direct
     * @throws PocketRecException status FORMAT if the bytes are not a valid model
     */
    public static PocketRec open(ByteBuffer buffer) {
        Objects.requireNonNull(buffer, "buffer");
        if (!buffer.isDirect()) {
            throw new IllegalArgumentException(
                    "pocketrec reads models in place: use ByteBuffer.allocateDirect or a mapped buffer");
        }
        long h = nativeOpenBuffer(buffer, buffer.position(), buffer.remaining());
        return new PocketRec(h, buffer);
    }

    /**
     * Opens the model file at {@code path} (memory-mapped, as {@link #open(String)}) only if it
     * is signed by {@code publicKey}: the Ed25519 signature over the file's SHA-256 is checked
     * before the model is trusted (see {@code pocketrec keygen} and {@code pocketrec sign}).
     *
     * @param path the signed {@code .prec} file
     * @param publicKey the 32-byte Ed25519 public key the app ships with
     * @return the open model
     * @throws PocketRecException status UNSIGNED (no signature), WRONG_KEY (another key),
     *     TAMPERED (changed after signing), IO or FORMAT
     */
    public static PocketRec openSigned(String path, byte[] publicKey) {
        Objects.requireNonNull(path, "path");
        requireKey(publicKey);
        return new PocketRec(nativeOpenPathSigned(path, publicKey), null);
    }

    /**
     * As {@link #open(ByteBuffer)}, only if the bytes are signed by {@code publicKey}.
     *
     * @param buffer a direct buffer holding a signed model between its position and limit
     * @param publicKey the 32-byte Ed25519 public key
     * @return the open model
     * @throws PocketRecException status UNSIGNED, WRONG_KEY, TAMPERED or FORMAT
     */
    public static PocketRec openSigned(ByteBuffer buffer, byte[] publicKey) {
        Objects.requireNonNull(buffer, "buffer");
        requireKey(publicKey);
        if (!buffer.isDirect()) {
            throw new IllegalArgumentException(
                    "pocketrec reads models in place: use ByteBuffer.allocateDirect or a mapped buffer");
        }
        long h = nativeOpenBufferSigned(buffer, buffer.position(), buffer.remaining(), publicKey);
        return new PocketRec(h, buffer);
    }

    /**
     * Applies a patch file ({@code pocketrec diff}) to the model file {@code base} and writes
     * the result to {@code target} atomically (a temporary file, fsync, rename): after an error
     * or a crash, {@code target} is untouched or complete. {@code target} may be {@code base};
     * a model open on the old file stays valid until closed.
     *
     * @param base the model the patch was made for
     * @param patch the patch file
     * @param target the file to write
     * @param publicKey the 32-byte key the patch must be signed by, or {@code null} to accept
     *     an unsigned patch
     * @throws PocketRecException status WRONG_BASE (a patch for another file; nothing
     *     written), BAD_PATCH, UNSIGNED, WRONG_KEY, TAMPERED or IO
     */
    public static void applyPatch(String base, String patch, String target, byte[] publicKey) {
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(patch, "patch");
        Objects.requireNonNull(target, "target");
        if (publicKey != null) {
            requireKey(publicKey);
        }
        nativeApplyPatch(base, patch, target, publicKey);
    }

    /**
     * Applies a patch held in memory to a model held in memory.
     *
     * @param base the model's bytes
     * @param patch the patch's bytes
     * @param publicKey the 32-byte key the patch must be signed by, or {@code null}
     * @return the new model's bytes
     * @throws PocketRecException as {@link #applyPatch(String, String, String, byte[])}
     */
    public static byte[] applyPatch(byte[] base, byte[] patch, byte[] publicKey) {
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(patch, "patch");
        if (publicKey != null) {
            requireKey(publicKey);
        }
        return nativeApplyPatchBytes(base, patch, publicKey);
    }

    private static void requireKey(byte[] publicKey) {
        Objects.requireNonNull(publicKey, "publicKey");
        if (publicKey.length != 32) {
            throw new IllegalArgumentException(
                    "an Ed25519 public key has 32 bytes, not " + publicKey.length);
        }
    }

    private long live() {
        long h = handle;
        if (h == 0) {
            throw new IllegalStateException("this PocketRec is closed");
        }
        return h;
    }

    /**
     * The embedding dimension.
     *
     * @return the dimension shared by both tables
     */
    public int dim() {
        return nativeDim(live());
    }

    /**
     * The number of users.
     *
     * @return rows of the user table
     */
    public long userCount() {
        return nativeCount(live(), true);
    }

    /**
     * The number of items.
     *
     * @return rows of the item table
     */
    public long itemCount() {
        return nativeCount(live(), false);
    }

    /**
     * Checks every byte of the model (all checksums and rows); opening checks only the
     * header, section table and metadata.
     *
     * @throws PocketRecException status FORMAT if anything is corrupt
     */
    public void verify() {
        nativeVerify(live());
    }

    /**
     * The dense embedding of a user.
     *
     * @param user the user's id
     * @return {@link #dim()} floats
     * @throws PocketRecException status NOT_FOUND if there is no such user
     */
    public float[] userEmbedding(long user) {
        return nativeEmbedding(live(), true, user);
    }

    /**
     * The dense embedding of an item.
     *
     * @param item the item's id
     * @return {@link #dim()} floats
     * @throws PocketRecException status NOT_FOUND if there is no such item
     */
    public float[] itemEmbedding(long item) {
        return nativeEmbedding(live(), false, item);
    }

    /**
     * Scores items for a user (similarity plus biases).
     *
     * @param user the user's id
     * @param items the items' ids
     * @return one score per item, in order
     * @throws PocketRecException status NOT_FOUND if the user or an item does not exist
     */
    public float[] score(long user, long... items) {
        Objects.requireNonNull(items, "items");
        return nativeScore(live(), user, items);
    }

    /**
     * The {@code k} best items for a user, best first, skipping {@code exclude}.
     *
     * @param user the user's id
     * @param k how many items at most
     * @param exclude item ids never to return (e.g. the user's history)
     * @return the items and their scores
     * @throws PocketRecException status NOT_FOUND if there is no such user
     */
    public Recommendations recommend(long user, int k, long... exclude) {
        long h = live();
        float[] scores = new float[capacity(k)];
        long[] items = nativeRecommend(h, user, exclude, scores.length, scores);
        return new Recommendations(items, scores);
    }

    /**
     * The {@code k} best items for a dense user vector of {@link #dim()} floats (no user bias
     * applies): for users who are not in the model (e.g. from {@link #foldIn}).
     *
     * @param userVector the user's embedding
     * @param k how many items at most
     * @param exclude item ids never to return
     * @return the items and their scores
     * @throws PocketRecException status INVALID_ARGUMENT if the vector has the wrong length or
     *     a NaN or infinite value
     */
    public Recommendations recommendVector(float[] userVector, int k, long... exclude) {
        Objects.requireNonNull(userVector, "userVector");
        long h = live();
        float[] scores = new float[capacity(k)];
        long[] items = nativeRecommendVector(h, userVector, exclude, scores.length, scores);
        return new Recommendations(items, scores);
    }

    /**
     * Folds a user in on the device: solves the user's vector from the items they interacted
     * with, the item table fixed (the per-user step of implicit ALS, with the settings stored
     * in the model), for {@link #recommendVector}. Exclude the items when recommending.
     *
     * <pre>{@code
     * long[] seen = {12L, 7L, 401L};
     * float[] user = model.foldIn(seen);
     * PocketRec.Recommendations top = model.recommendVector(user, 20, seen);
     * }</pre>
     *
     * <p>Item ids the model does not have are skipped (an error only when no item is known
     * and there is no prior); a repeated id counts each time. The answer equals the C API's
     * {@code pocketrec_fold_in} and the Rust runtime's {@code Model::fold_in} exactly.
     *
     * @param items the item ids the user interacted with (may be empty with a prior)
     * @param weights one weight per item, each finite and at least 0, or {@code null} for all 1
     * @param prior the user's current vector of {@link #dim()} floats, to stay close to, or
     *     {@code null}
     * @param precision how strongly to stay close to {@code prior} (finite, at least 0; 0
     *     ignores it); must be 0 when {@code prior} is {@code null}
     * @return the user's vector, {@link #dim()} floats
     * @throws PocketRecException status UNSUPPORTED if the model has no fold-in section
     *     (exported with {@code --no-fold-in}); INVALID_ARGUMENT for a weight or precision that
     *     is negative or not finite, weights or a prior of the wrong length, or no known item
     *     and no prior
     */
    public float[] foldIn(long[] items, float[] weights, float[] prior, float precision) {
        Objects.requireNonNull(items, "items");
        return nativeFoldIn(live(), items, weights, prior, precision);
    }

    /**
     * Folds a user in from the items they interacted with, each weighing 1, without a prior:
     * {@code foldIn(items, null, null, 0f)}.
     *
     * @param items the item ids the user interacted with
     * @return the user's vector, {@link #dim()} floats
     * @throws PocketRecException status UNSUPPORTED if the model has no fold-in section;
     *     INVALID_ARGUMENT if no item is in the model
     */
    public float[] foldIn(long... items) {
        return foldIn(items, null, null, 0f);
    }

    /** {@code k}, capped at the number of items (no more can be returned). */
    private int capacity(int k) {
        if (k < 0) {
            throw new IllegalArgumentException("k is negative: " + k);
        }
        return (int) Math.min(k, itemCount());
    }

    /**
     * The {@code k} best items for each of {@code users}, on {@code threads} threads: element
     * {@code i} is what {@link #recommend(long, int, long...) recommend(users[i], k)} returns,
     * whatever the number of threads, except that a user the model does not have gets an
     * empty answer (size 0) instead of an exception. The threads are started and joined
     * inside the call, which blocks until every user is answered (call it off the UI thread).
     *
     * <pre>{@code
     * PocketRec.Recommendations[] tops = model.recommendBatch(userIds, 20, 0);
     * for (int i = 0; i < userIds.length; i++) store(userIds[i], tops[i].items, tops[i].scores);
     * }</pre>
     *
     * @param users the users' ids (may repeat)
     * @param k how many items at most for each
     * @param threads how many threads: 0 for one per available core (at most 256, and at most
     *     one per 64 users)
     * @return one answer per user, in the order of {@code users}
     * @throws IllegalArgumentException if {@code k} or {@code threads} is negative, or
     *     {@code users.length} times {@code k} (capped at the number of items) does not fit in
     *     a Java array: split the batch
     * @throws PocketRecException status UNSUPPORTED above 512 dimensions, FORMAT for a corrupt
     *     model
     */
    public Recommendations[] recommendBatch(long[] users, int k, int threads) {
        Objects.requireNonNull(users, "users");
        if (threads < 0) {
            throw new IllegalArgumentException("threads is negative: " + threads);
        }
        long h = live();
        int kept = capacity(k);
        long entries = (long) users.length * kept;
        if (entries > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(
                    users.length + " users x " + kept + " items is too large for one batch: split it");
        }
        float[] scores = new float[(int) entries];
        int[] counts = new int[users.length];
        long[] items = nativeRecommendBatch(h, users, kept, threads, scores, counts);
        Recommendations[] all = new Recommendations[users.length];
        for (int i = 0; i < users.length; i++) {
            int from = i * kept;
            all[i] = new Recommendations(
                    java.util.Arrays.copyOfRange(items, from, from + counts[i]),
                    java.util.Arrays.copyOfRange(scores, from, from + counts[i]));
        }
        return all;
    }

    /**
     * {@link #recommendBatch(long[], int, int)} on one thread per available core.
     *
     * @param users the users' ids
     * @param k how many items at most for each
     * @return one answer per user, in the order of {@code users}
     */
    public Recommendations[] recommendBatch(long[] users, int k) {
        return recommendBatch(users, k, 0);
    }

    /**
     * The original string of an item's id, for models exported with string ids (they store
     * the strings by default): what {@link #recommend} returns as a 64-bit hash, given back as
     * the app named the item, e.g. "sku-10442".
     *
     * @param id the item's id (the hash of its string id)
     * @return the string, or {@code null} when the model stores no strings for its item ids
     *     (integer ids, or string ids exported with {@code --no-id-strings})
     * @throws PocketRecException NOT_FOUND when the model has the strings but no item has
     *     this id
     */
    public String itemIdString(long id) {
        return nativeItemIdString(live(), id);
    }

    /**
     * The id of the item whose string id is {@code id}, e.g. "sku-10442": exact when the model
     * stores the strings (the stored string is compared, not only its hash), by the hash alone
     * for string ids exported with {@code --no-id-strings}. The exporter trims surrounding
     * whitespace from id lines; pass the trimmed string.
     *
     * @param id the item's string id
     * @return its id in the model, as {@link #recommend} returns it
     * @throws PocketRecException NOT_FOUND when no item has this string id, UNSUPPORTED when the
     *     model's item ids are integers
     */
    public long findItem(String id) {
        Objects.requireNonNull(id, "id");
        return nativeFindItem(live(), id.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * The 64-bit id of a string id, as the exporter stores it (FNV-1a 64 of its UTF-8 bytes).
     * The exporter trims surrounding whitespace from id lines; pass the trimmed string.
     *
     * @param id the string id
     * @return its id in the model
     */
    public static long idFromString(String id) {
        Objects.requireNonNull(id, "id");
        return nativeIdFromUtf8(id.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * The native library's release, e.g. "0.1.0".
     *
     * @return the version string
     */
    public static String version() {
        return nativeVersion();
    }

    /**
     * Releases the model (its memory map, or its hold on the buffer). Idempotent; calls still
     * running on other threads finish normally; later calls throw IllegalStateException.
     */
    @Override
    public void close() {
        long h;
        synchronized (this) {
            h = handle;
            handle = 0;
        }
        if (h != 0) {
            nativeClose(h);
        }
    }

    /** The answer of a recommend call: {@code items[i]} scored {@code scores[i]}, best first. */
    public static final class Recommendations {
        /** Item ids, best first. */
        public final long[] items;
        /** Their scores. */
        public final float[] scores;

        Recommendations(long[] items, float[] allScores) {
            this.items = items;
            this.scores = java.util.Arrays.copyOf(allScores, items.length);
        }

        /**
         * The number of items returned.
         *
         * @return at most the k asked for
         */
        public int size() {
            return items.length;
        }
    }

    private static native int nativeAbiVersion();

    private static native String nativeVersion();

    private static native long nativeOpenPath(String path);

    private static native long nativeOpenFd(int fd, long offset, long length);

    private static native int nativeFdOf(FileDescriptor fd);

    private static native long nativeOpenBuffer(ByteBuffer buffer, int position, int length);

    private static native long nativeOpenPathSigned(String path, byte[] publicKey);

    private static native long nativeOpenBufferSigned(
            ByteBuffer buffer, int position, int length, byte[] publicKey);

    private static native void nativeApplyPatch(
            String base, String patch, String target, byte[] publicKey);

    private static native byte[] nativeApplyPatchBytes(byte[] base, byte[] patch, byte[] publicKey);

    private static native long nativeIdFromUtf8(byte[] utf8);

    // Instance methods: the JVM keeps `this` (and so `buffer`) reachable during each call.
    private native void nativeClose(long handle);

    private native void nativeVerify(long handle);

    private native int nativeDim(long handle);

    private native String nativeItemIdString(long handle, long id);

    private native long nativeCount(long handle, boolean users);

    private native float[] nativeEmbedding(long handle, boolean user, long id);

    private native float[] nativeScore(long handle, long user, long[] items);

    private native long[] nativeRecommend(
            long handle, long user, long[] exclude, int k, float[] scores);

    private native long[] nativeRecommendBatch(
            long handle, long[] users, int k, int threads, float[] scores, int[] counts);

    private native long nativeFindItem(long handle, byte[] utf8);

    private native long[] nativeRecommendVector(
            long handle, float[] vector, long[] exclude, int k, float[] scores);

    private native float[] nativeFoldIn(
            long handle, long[] items, float[] weights, float[] prior, float precision);
}
