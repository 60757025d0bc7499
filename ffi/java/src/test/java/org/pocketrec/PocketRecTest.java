package org.pocketrec;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tests of {@link PocketRec} on the host JVM (run by scripts/jni-test.sh):
 *
 * <pre>
 * java -Djava.library.path=target/release -cp CLASSES org.pocketrec.PocketRecTest \
 *     MODEL CONTAINER OFFSET EXPECTED.jsonl EXPECTED_FOLD_IN.jsonl NO_FOLD_IN_MODEL \
 *     [STRING_ID_MODEL EXPECTED_STRINGS.txt [NO_STRINGS_MODEL]]
 * </pre>
 *
 * MODEL is a .prec file with a fold-in section, CONTAINER holds the same model at byte OFFSET
 * (as an APK holds an asset), EXPECTED holds `pocketrec recommend --json -k 20 --exclude 5,17`
 * for some users, EXPECTED_FOLD_IN `pocketrec recommend --items ... --json -k 20 --exclude 5,17`
 * for some lists of items, NO_FOLD_IN_MODEL is MODEL exported with --no-fold-in.
 * STRING_ID_MODEL has string item ids, EXPECTED_STRINGS the items the CLI prints for its user
 * 3 (one string per line), NO_STRINGS_MODEL the same model exported with --no-id-strings.
 * Prints "N passed, N failed"; exits 1 if anything failed.
 */
public final class PocketRecTest {
    private static int passed;
    private static int failed;

    private static void check(boolean ok, String what) {
        if (ok) {
            passed++;
        } else {
            failed++;
            System.out.println("FAIL " + what);
        }
    }

    /** Runs {@code body} and checks that it throws a PocketRecException with {@code status}. */
    private static void expectStatus(int status, String what, Runnable body) {
        try {
            body.run();
            check(false, what + ": no exception");
        } catch (PocketRecException e) {
            check(e.status() == status, what + ": status " + e.status() + " (" + e.getMessage() + ")");
        }
    }

    private static void expectThrows(Class<? extends Throwable> type, String what, Runnable body) {
        try {
            body.run();
            check(false, what + ": no exception");
        } catch (Throwable e) {
            check(type.isInstance(e), what + ": " + e);
        }
    }

    /** One expected list: user (or the items folded in from), item ids, scores. */
    private static final class Expected {
        long user;
        long[] foldedFrom;
        int unknown;
        List<Long> items = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
    }

    private static List<Expected> parse(String path) throws IOException {
        Pattern user = Pattern.compile("\"user\":(\\d+)");
        Pattern folded = Pattern.compile("\"folded_from\":\\[([0-9,]*)\\],\"unknown\":(\\d+)");
        Pattern item = Pattern.compile("\\{\"item\":(\\d+),\"score\":([-0-9.eE+]+)\\}");
        List<Expected> all = new ArrayList<>();
        for (String line : Files.readAllLines(Paths.get(path))) {
            if (line.isBlank()) continue;
            Expected e = new Expected();
            Matcher m = user.matcher(line);
            Matcher f = folded.matcher(line);
            if (m.find()) {
                e.user = Long.parseLong(m.group(1));
            } else if (f.find()) {
                e.foldedFrom = java.util.Arrays.stream(f.group(1).split(","))
                        .mapToLong(Long::parseUnsignedLong).toArray();
                e.unknown = Integer.parseInt(f.group(2));
            } else {
                throw new IOException("no user and no folded_from in " + line);
            }
            m = item.matcher(line);
            while (m.find()) {
                e.items.add(Long.parseUnsignedLong(m.group(1)));
                e.scores.add(Float.parseFloat(m.group(2)));
            }
            all.add(e);
        }
        return all;
    }

    private static boolean same(PocketRec.Recommendations got, Expected want) {
        if (got.size() != want.items.size() || got.scores.length != got.size()) return false;
        for (int i = 0; i < got.size(); i++) {
            if (got.items[i] != want.items.get(i)) return false;
            if (Float.floatToIntBits(got.scores[i]) != Float.floatToIntBits(want.scores.get(i))) return false;
        }
        return true;
    }

    private static boolean same(PocketRec.Recommendations a, PocketRec.Recommendations b) {
        return java.util.Arrays.equals(a.items, b.items) && java.util.Arrays.equals(a.scores, b.scores);
    }

    /** recommendBatch on 1, 2 and 4 threads equals recommend user by user (unknown: empty). */
    private static void batchMatchesOneByOne(PocketRec model, long[] users, int k, String how) {
        for (int threads : new int[] {1, 2, 4, 0}) {
            PocketRec.Recommendations[] batch = model.recommendBatch(users, k, threads);
            check(batch.length == users.length, how + ": one answer per user");
            int mismatches = 0;
            int unknown = 0;
            for (int i = 0; i < users.length; i++) {
                PocketRec.Recommendations one;
                try {
                    one = model.recommend(users[i], k);
                } catch (PocketRecException e) {
                    if (e.status() != PocketRecException.NOT_FOUND) throw e;
                    unknown++;
                    if (batch[i].size() != 0) mismatches++;
                    continue;
                }
                if (!same(batch[i], one)) mismatches++;
            }
            check(mismatches == 0, how + ", k " + k + ", " + threads + " threads: batch equals recommend ("
                    + mismatches + " mismatches, " + unknown + " unknown users)");
        }
    }

    private static void matchesCli(PocketRec model, List<Expected> expected, String how) {
        for (Expected e : expected) {
            check(same(model.recommend(e.user, 20, 5L, 17L), e), how + ": user " + e.user + " equals the CLI");
        }
    }

    /** Signed models and patches, with the files of scripts/update-fixtures.sh in {@code dir}. */
    private static void updates(String dir) throws Exception {
        byte[] key = java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(dir, "app.pub.bin"));
        byte[] other = java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(dir, "other.pub.bin"));
        String oldPath = dir + "/old.prec";
        String newPath = dir + "/new.prec";
        byte[] newBytes = java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(newPath));
        byte[] oldBytes = java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(oldPath));
        try (PocketRec model = PocketRec.openSigned(newPath, key)) {
            check(model.dim() == 64, "openSigned: dim");
        }
        expectStatus(PocketRecException.UNSIGNED, "openSigned of an unsigned model",
                () -> PocketRec.openSigned(dir + "/new-unsigned.prec", key).close());
        expectStatus(PocketRecException.WRONG_KEY, "openSigned with another key",
                () -> PocketRec.openSigned(newPath, other).close());
        ByteBuffer tampered = ByteBuffer.allocateDirect(newBytes.length);
        tampered.put(newBytes).flip();
        tampered.put(newBytes.length / 2, (byte) (newBytes[newBytes.length / 2] ^ 1));
        expectStatus(PocketRecException.TAMPERED, "openSigned of a changed model",
                () -> PocketRec.openSigned(tampered, key).close());
        expectThrows(IllegalArgumentException.class, "a short key",
                () -> PocketRec.openSigned(newPath, new byte[31]));
        // A patch between files, in place, then in memory.
        java.nio.file.Path device = java.nio.file.Paths.get(dir, "device.prec");
        java.nio.file.Files.write(device, oldBytes);
        PocketRec.applyPatch(device.toString(), dir + "/signed.precpatch", device.toString(), key);
        check(java.util.Arrays.equals(java.nio.file.Files.readAllBytes(device), newBytes),
                "applyPatch gives the new file");
        expectStatus(PocketRecException.WRONG_BASE, "applyPatch to another base", () -> PocketRec.applyPatch(
                device.toString(), dir + "/signed.precpatch", device.toString(), key));
        check(java.util.Arrays.equals(java.nio.file.Files.readAllBytes(device), newBytes),
                "a refused patch leaves the file");
        expectStatus(PocketRecException.UNSIGNED, "an unsigned patch with a key", () -> PocketRec.applyPatch(
                oldPath, dir + "/unsigned.precpatch", device.toString(), key));
        byte[] patch = java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(dir, "signed.precpatch"));
        check(java.util.Arrays.equals(PocketRec.applyPatch(oldBytes, patch, key), newBytes),
                "applyPatch(bytes) gives the new file");
        expectStatus(PocketRecException.WRONG_KEY, "applyPatch(bytes) with another key",
                () -> PocketRec.applyPatch(oldBytes, patch, other));
        byte[] damaged = java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(dir, "unsigned.precpatch"));
        damaged[damaged.length - 2] ^= 0x10;
        expectStatus(PocketRecException.BAD_PATCH, "a damaged patch",
                () -> PocketRec.applyPatch(oldBytes, damaged, null));
    }

    public static void main(String[] args) throws Exception {
        String modelPath = args[0];
        String container = args[1];
        long offset = Long.parseLong(args[2]);
        List<Expected> expected = parse(args[3]);
        List<Expected> expectedFolded = parse(args[4]);
        String noFoldInPath = args[5];
        byte[] bytes = Files.readAllBytes(Paths.get(modelPath));
        check(expected.size() >= 3, "expected lists read");
        check(PocketRec.version().matches("\\d+\\.\\d+\\.\\d+.*"), "version " + PocketRec.version());

        // 1. Every way of opening gives the CLI's answers.
        try (PocketRec model = PocketRec.open(modelPath)) {
            matchesCli(model, expected, "open(path)");
            check(model.dim() == 64, "dim " + model.dim());
            check(model.userCount() == 200 && model.itemCount() == 3000, "counts");
            model.verify();

            // Embeddings: the user's own vector ranks like the user (the demo has no user bias);
            // scores equal the recommended scores.
            Expected e = expected.get(1);
            float[] u = model.userEmbedding(e.user);
            check(u.length == 64, "user embedding length");
            PocketRec.Recommendations byVector = model.recommendVector(u, 20, 5L, 17L);
            check(same(byVector, e), "recommendVector(userEmbedding(u)) equals recommend(u)");
            long[] top = new long[] {e.items.get(0), e.items.get(1)};
            float[] s = model.score(e.user, top);
            check(s.length == 2 && s[0] == e.scores.get(0) && s[1] == e.scores.get(1), "score");
            float[] item = model.itemEmbedding(top[0]);
            float dot = 0;
            for (int i = 0; i < item.length; i++) dot += u[i] * item[i];
            check(Math.abs(dot - s[0]) < 1.0f, "item embedding is consistent with the score");
            check(model.recommend(e.user, 5000).size() == 3000, "k above the catalogue returns it all");
            check(model.recommend(e.user, 0).size() == 0, "k = 0");

            // Errors are exceptions with the C status, never crashes.
            expectStatus(PocketRecException.NOT_FOUND, "unknown user", () -> model.recommend(999_999L, 5));
            expectStatus(PocketRecException.NOT_FOUND, "unknown item", () -> model.itemEmbedding(-1L));
            expectStatus(PocketRecException.NOT_FOUND, "unknown item in score", () -> model.score(e.user, 1L, 99_999L));
            expectStatus(PocketRecException.INVALID_ARGUMENT, "vector of the wrong dimension",
                    () -> model.recommendVector(new float[3], 5));
            float[] nan = u.clone();
            nan[0] = Float.NaN;
            expectStatus(PocketRecException.INVALID_ARGUMENT, "NaN in the vector", () -> model.recommendVector(nan, 5));
            expectThrows(IllegalArgumentException.class, "negative k", () -> model.recommend(e.user, -1));

            // Fold-in: a new user from the items they interacted with, then recommendVector,
            // equals `pocketrec recommend --items ...` (same floats, bit for bit).
            check(expectedFolded.size() >= 3, "expected folded lists read");
            for (Expected f : expectedFolded) {
                float[] folded = model.foldIn(f.foldedFrom);
                check(folded.length == 64, "folded vector length");
                long[] exclude = java.util.Arrays.copyOf(f.foldedFrom, f.foldedFrom.length + 2);
                exclude[f.foldedFrom.length] = 5L;
                exclude[f.foldedFrom.length + 1] = 17L;
                check(same(model.recommendVector(folded, 20, exclude), f),
                        "foldIn(" + java.util.Arrays.toString(f.foldedFrom) + ") + recommendVector equals the CLI");
                check(java.util.Arrays.equals(folded, model.foldIn(f.foldedFrom, null, null, 0f)),
                        "foldIn(items) = foldIn(items, null, null, 0)");
            }
            long[] liked = expectedFolded.get(0).foldedFrom;
            float[] plain = model.foldIn(liked);
            float[] ones = new float[liked.length];
            java.util.Arrays.fill(ones, 1f);
            check(java.util.Arrays.equals(plain, model.foldIn(liked, ones, null, 0f)), "weights of 1 = no weights");
            ones[0] = 4f;
            check(!java.util.Arrays.equals(plain, model.foldIn(liked, ones, null, 0f)), "weights matter");
            float[] withPrior = model.foldIn(liked, null, u, 2f);
            check(withPrior.length == 64 && !java.util.Arrays.equals(withPrior, plain), "a prior matters");
            float[] priorOnly = model.foldIn(new long[0], null, u, 1f);
            check(priorOnly.length == 64, "a prior alone");
            expectStatus(PocketRecException.INVALID_ARGUMENT, "NaN weight",
                    () -> model.foldIn(liked, new float[] {Float.NaN, 1f, 1f}, null, 0f));
            expectStatus(PocketRecException.INVALID_ARGUMENT, "negative weight",
                    () -> model.foldIn(liked, new float[] {1f, -1f, 1f}, null, 0f));
            expectStatus(PocketRecException.INVALID_ARGUMENT, "weights of the wrong length",
                    () -> model.foldIn(liked, new float[] {1f}, null, 0f));
            expectStatus(PocketRecException.INVALID_ARGUMENT, "prior of the wrong length",
                    () -> model.foldIn(liked, null, new float[3], 1f));
            expectStatus(PocketRecException.INVALID_ARGUMENT, "precision without a prior",
                    () -> model.foldIn(liked, null, null, 1f));
            expectStatus(PocketRecException.INVALID_ARGUMENT, "negative precision",
                    () -> model.foldIn(liked, null, u, -1f));
            expectStatus(PocketRecException.INVALID_ARGUMENT, "only unknown items",
                    () -> model.foldIn(99_999L, 123_456L));
            expectStatus(PocketRecException.INVALID_ARGUMENT, "nothing at all", () -> model.foldIn());
            expectThrows(NullPointerException.class, "null items",
                    () -> model.foldIn((long[]) null, null, null, 0f));
            expectThrows(NullPointerException.class, "null items", () -> model.score(e.user, (long[]) null));
            check(model.recommend(e.user, 5, (long[]) null).size() == 5, "null exclude means none");

            // Batches: every user of the model and a few unknown ones, on 1, 2, 4 and all
            // threads, equal recommend user by user.
            long[] everyone = new long[203];
            for (int i = 0; i < 200; i++) everyone[i] = (i * 37) % 200;
            everyone[200] = 999_999L;
            everyone[201] = e.user;
            everyone[202] = -1L;
            batchMatchesOneByOne(model, everyone, 20, "recommendBatch(200 users + 2 unknown + 1 repeat)");
            batchMatchesOneByOne(model, new long[] {e.user, 999_999L, 3L}, 5000, "recommendBatch, k above the catalogue");
            PocketRec.Recommendations[] firstTwo = model.recommendBatch(new long[] {e.user, 999_999L}, 20);
            check(same(firstTwo[0], model.recommend(e.user, 20)) && firstTwo[1].size() == 0,
                    "recommendBatch(users, k) on all cores; an unknown user gets an empty answer");
            check(model.recommendBatch(new long[0], 20, 2).length == 0, "an empty batch");
            check(model.recommendBatch(everyone, 0, 2)[0].size() == 0, "a batch with k = 0");
            expectThrows(IllegalArgumentException.class, "batch: negative k", () -> model.recommendBatch(everyone, -1, 1));
            expectThrows(IllegalArgumentException.class, "batch: negative threads", () -> model.recommendBatch(everyone, 5, -1));
            expectThrows(NullPointerException.class, "batch: null users", () -> model.recommendBatch(null, 5, 1));

            // 2. Eight threads share the instance and get identical answers.
            AtomicInteger mismatches = new AtomicInteger();
            Thread[] threads = new Thread[8];
            for (int t = 0; t < threads.length; t++) {
                final int seed = t;
                threads[t] = new Thread(() -> {
                    for (int i = 0; i < 150; i++) {
                        Expected x = expected.get((i + seed) % expected.size());
                        if (!same(model.recommend(x.user, 20, 5L, 17L), x)) mismatches.incrementAndGet();
                        if (i % 10 == 0 && !java.util.Arrays.equals(model.foldIn(liked), plain)) {
                            mismatches.incrementAndGet();
                        }
                    }
                });
                threads[t].start();
            }
            for (Thread t : threads) t.join();
            check(mismatches.get() == 0, "8 threads x 150 queries and 15 fold-ins: " + mismatches.get() + " mismatches");
        }

        // A file descriptor with a start offset and a length, as AssetFileDescriptor gives.
        FileInputStream in = new FileInputStream(container);
        PocketRec fromFd;
        try {
            fromFd = PocketRec.open(in.getFD(), offset, bytes.length);
        } finally {
            in.close(); // the model does not need the descriptor any more
        }
        matchesCli(fromFd, expected, "open(fd, " + offset + ", " + bytes.length + ")");
        fromFd.close();
        expectStatus(PocketRecException.INVALID_ARGUMENT, "fd range past the end", () -> {
            try (FileInputStream again = new FileInputStream(container)) {
                PocketRec.open(again.getFD(), offset + 1, bytes.length + 5000L).close();
            } catch (IOException x) {
                throw new RuntimeException(x);
            }
        });

        // A direct buffer (allocated, and memory-mapped at the model's offset in the container).
        ByteBuffer direct = ByteBuffer.allocateDirect(bytes.length + 10);
        direct.position(7);
        direct.put(bytes);
        direct.position(7).limit(7 + bytes.length);
        try (PocketRec model = PocketRec.open(direct)) {
            matchesCli(model, expected, "open(direct ByteBuffer at position 7)");
        }
        try (RandomAccessFile file = new RandomAccessFile(container, "r");
                FileChannel channel = file.getChannel()) {
            MappedByteBuffer mapped = channel.map(FileChannel.MapMode.READ_ONLY, offset, bytes.length);
            try (PocketRec model = PocketRec.open(mapped)) {
                matchesCli(model, expected, "open(MappedByteBuffer)");
            }
        }
        expectThrows(IllegalArgumentException.class, "heap buffers are refused", () -> PocketRec.open(ByteBuffer.wrap(bytes)));

        // Bad files.
        ByteBuffer truncated = ByteBuffer.allocateDirect(bytes.length / 2);
        truncated.put(bytes, 0, bytes.length / 2).flip();
        expectStatus(PocketRecException.FORMAT, "truncated model", () -> PocketRec.open(truncated));
        expectStatus(PocketRecException.IO, "missing file", () -> PocketRec.open("/nonexistent/model.prec"));
        expectThrows(NullPointerException.class, "null path", () -> PocketRec.open((String) null));

        // A model without the fold-in section cannot fold in (vector recommend still works).
        try (PocketRec model = PocketRec.open(noFoldInPath)) {
            expectStatus(PocketRecException.UNSUPPORTED, "foldIn without the section",
                    () -> model.foldIn(3L, 8L, 12L));
            check(model.recommendVector(model.userEmbedding(expected.get(0).user), 20, 5L, 17L).size() == 20,
                    "recommendVector without the section");
        }

        if (args.length > 9) {
            updates(args[9]);
        }

        // Closed instances.
        PocketRec closed = PocketRec.open(modelPath);
        closed.close();
        closed.close(); // idempotent
        expectThrows(IllegalStateException.class, "use after close", () -> closed.recommend(expected.get(0).user, 5));
        expectThrows(IllegalStateException.class, "foldIn after close", () -> closed.foldIn(3L));
        expectThrows(IllegalStateException.class, "recommendBatch after close",
                () -> closed.recommendBatch(new long[] {3L}, 5, 1));
        expectThrows(IllegalStateException.class, "findItem after close", () -> closed.findItem("sku-00000"));

        // String ids hash like the exporter (pocketrec::string_id).
        check(PocketRec.idFromString("") == 0xcbf29ce484222325L, "idFromString(\"\")");
        check(PocketRec.idFromString("a") == 0xaf63dc4c8601ec8cL, "idFromString(\"a\")");

        // Original string ids: a model exported with item ids "sku-NNNNN" gives them back, as
        // the CLI prints them; a model of integer ids has none (NOT_FOUND).
        if (args.length > 7) {
            List<String> want = Files.readAllLines(Paths.get(args[7]));
            try (PocketRec model = PocketRec.open(args[6])) {
                PocketRec.Recommendations got = model.recommend(3L, want.size());
                check(got.size() == want.size(), "string-id model: " + got.size() + " items");
                PocketRec.Recommendations[] batch = model.recommendBatch(new long[] {3L, 3L, 999_999L}, want.size(), 2);
                check(same(batch[0], got) && same(batch[1], got) && batch[2].size() == 0,
                        "recommendBatch on the string-id model equals recommend");
                for (int i = 0; i < Math.min(got.size(), want.size()); i++) {
                    String name = model.itemIdString(got.items[i]);
                    check(want.get(i).equals(name), "itemIdString rank " + i + ": " + name + " equals the CLI's " + want.get(i));
                    check(want.get(i).equals(model.itemIdString(batch[1].items[i])),
                            "itemIdString of the batch's rank " + i + " equals the CLI's " + want.get(i));
                    check(PocketRec.idFromString(name) == got.items[i], "idFromString(" + name + ") is the item's id");
                    check(model.findItem(want.get(i)) == got.items[i], "findItem(" + want.get(i) + ") is the item's id");
                }
                expectStatus(PocketRecException.NOT_FOUND, "unknown item id string", () -> model.itemIdString(12345L));
                expectStatus(PocketRecException.NOT_FOUND, "findItem of a string that is not an item",
                        () -> model.findItem("sku-99999"));
                expectStatus(PocketRecException.NOT_FOUND, "findItem does not trim", () -> model.findItem(" " + want.get(0)));
                expectThrows(NullPointerException.class, "findItem(null)", () -> model.findItem(null));
            }
            if (args.length > 8) {
                // String ids exported with --no-id-strings: no strings, found by the hash alone.
                try (PocketRec model = PocketRec.open(args[8])) {
                    PocketRec.Recommendations got = model.recommend(3L, want.size());
                    check(model.itemIdString(got.items[0]) == null, "--no-id-strings: itemIdString is null");
                    check(model.findItem(want.get(0)) == got.items[0], "--no-id-strings: findItem by the hash");
                    expectStatus(PocketRecException.NOT_FOUND, "--no-id-strings: findItem of another string",
                            () -> model.findItem("sku-99999"));
                }
            }
            try (PocketRec model = PocketRec.open(modelPath)) {
                check(model.itemIdString(5L) == null, "integer ids have no strings: itemIdString is null");
                check(model.itemIdString(999_999L) == null, "itemIdString is null for any id without strings");
                expectStatus(PocketRecException.UNSUPPORTED, "findItem on integer ids", () -> model.findItem("5"));
            }
        }

        System.out.println("jni-test: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
