/*
 * abi_test.c - tests of the C API from C: misuse (NULL everywhere, short buffers, closed
 * handles, truncated and corrupt files, bad descriptors) returns errors, fold-in and vector
 * recommend work and refuse bad queries, batches equal recommend user by user on 1, 2, 4
 * and all threads, and one handle serves 8 threads with identical answers. Run by
 * scripts/ffi-test.sh (also under valgrind and on ARM under qemu by scripts/cross.sh).
 *
 *   abi_test MODEL USER [NO_FOLD_IN_MODEL [STRING_ID_MODEL EXPECTED [NO_STRINGS_MODEL]]]
 *
 * USER is an integer user id of MODEL, which must carry a fold-in section (pocketrec export
 * writes one by default). NO_FOLD_IN_MODEL, when given, is a model exported with
 * --no-fold-in: fold-in on it must return POCKETREC_UNSUPPORTED. STRING_ID_MODEL has string
 * item ids and EXPECTED the items `pocketrec recommend STRING_ID_MODEL --user 3 -k 5 --json`
 * prints for it, one string per line; NO_STRINGS_MODEL is STRING_ID_MODEL exported with
 * --no-id-strings.
 *
 * Prints one line per check and ends with "N passed, N failed"; exit status 0 iff none failed.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pocketrec.h"

static int passed, failures;

#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (cond) {                                                 \
            passed++;                                               \
        } else {                                                    \
            failures++;                                             \
            printf("FAIL %s:%d: %s -- ", __FILE__, __LINE__, #cond); \
            printf(__VA_ARGS__);                                    \
            printf(" (last error: %s)\n", pocketrec_last_error());  \
        }                                                           \
    } while (0)

#define K 10
#define THREADS 8
#define ROUNDS 300
#define MAX_DIM 4096
#define FOLDED 3

static const char *model_path;
static uint64_t user;
static uint8_t *file_bytes;
static size_t file_len;
static uint64_t want_items[K];
static float want_scores[K];
static size_t want_len;
/* The user folded in from their top FOLDED items (want_items), for the threads. */
static uint32_t model_dim;
static float want_folded[MAX_DIM];

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)size + 1);
    if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return data;
}

static void write_file(const char *path, const uint8_t *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static void test_null_everywhere(pocketrec_model *m) {
    pocketrec_model *h = (pocketrec_model *)1; /* must be reset to NULL on failure */
    uint32_t dim;
    uint64_t a, b, ids[K];
    float v[4096];
    size_t n = 7;
    CHECK(pocketrec_open(NULL, &h) == POCKETREC_INVALID_ARGUMENT, "open(NULL path)");
    CHECK(h == NULL, "failed open leaves *out NULL");
    CHECK(pocketrec_open(model_path, NULL) == POCKETREC_INVALID_ARGUMENT, "open(NULL out)");
    CHECK(pocketrec_open_copy(NULL, &h) == POCKETREC_INVALID_ARGUMENT, "open_copy(NULL)");
    CHECK(pocketrec_open_bytes(NULL, 10, &h) == POCKETREC_INVALID_ARGUMENT, "open_bytes(NULL)");
    CHECK(pocketrec_open_bytes(file_bytes, file_len, NULL) == POCKETREC_INVALID_ARGUMENT,
          "open_bytes(NULL out)");
    CHECK(pocketrec_open_fd(0, 0, 1, NULL) == POCKETREC_INVALID_ARGUMENT, "open_fd(NULL out)");
    CHECK(pocketrec_verify(NULL) == POCKETREC_INVALID_ARGUMENT, "verify(NULL)");
    CHECK(pocketrec_dim(NULL, &dim) == POCKETREC_INVALID_ARGUMENT, "dim(NULL model)");
    CHECK(pocketrec_dim(m, NULL) == POCKETREC_INVALID_ARGUMENT, "dim(NULL out)");
    CHECK(strcmp(pocketrec_last_error(), "out is NULL") == 0, "message names the argument");
    CHECK(pocketrec_counts(NULL, &a, &b) == POCKETREC_INVALID_ARGUMENT, "counts(NULL)");
    CHECK(pocketrec_user_embedding(NULL, user, v, 4096) == POCKETREC_INVALID_ARGUMENT, "ue(NULL)");
    CHECK(pocketrec_user_embedding(m, user, NULL, 4096) == POCKETREC_INVALID_ARGUMENT, "ue(out)");
    CHECK(pocketrec_item_embedding(m, 0, NULL, 4096) == POCKETREC_INVALID_ARGUMENT, "ie(out)");
    CHECK(pocketrec_score(NULL, user, ids, 1, v) == POCKETREC_INVALID_ARGUMENT, "score(NULL)");
    CHECK(pocketrec_score(m, user, NULL, 1, v) == POCKETREC_INVALID_ARGUMENT, "score(items)");
    CHECK(pocketrec_score(m, user, ids, 1, NULL) == POCKETREC_INVALID_ARGUMENT, "score(out)");
    CHECK(pocketrec_recommend(NULL, user, NULL, 0, K, ids, v, &n) == POCKETREC_INVALID_ARGUMENT,
          "recommend(NULL model)");
    CHECK(n == 0, "out_len is 0 after a failure");
    CHECK(pocketrec_recommend(m, user, NULL, 2, K, ids, v, &n) == POCKETREC_INVALID_ARGUMENT,
          "recommend(NULL exclude)");
    CHECK(pocketrec_recommend(m, user, NULL, 0, K, NULL, v, &n) == POCKETREC_INVALID_ARGUMENT,
          "recommend(NULL out_items)");
    CHECK(pocketrec_recommend(m, user, NULL, 0, K, ids, v, NULL) == POCKETREC_INVALID_ARGUMENT,
          "recommend(NULL out_len)");
    CHECK(pocketrec_recommend_vector(m, NULL, 4, NULL, 0, K, ids, v, &n) ==
              POCKETREC_INVALID_ARGUMENT, "recommend_vector(NULL vector)");
    CHECK(pocketrec_id_from_str(NULL, 3) == 0 && strcmp(pocketrec_last_error(), "s is NULL") == 0,
          "id_from_str(NULL)");
    pocketrec_close(NULL);
    CHECK(pocketrec_counts(m, NULL, &b) == POCKETREC_OK && b > 0, "optional counts");
    CHECK(strcmp(pocketrec_last_error(), "") == 0, "success clears the message");
}

static void test_buffers(pocketrec_model *m) {
    uint32_t dim = 0;
    uint64_t ids[K];
    float v[4096];
    size_t n = 0;
    CHECK(pocketrec_dim(m, &dim) == POCKETREC_OK && dim > 0 && dim <= 4096, "dim %u", dim);
    CHECK(pocketrec_user_embedding(m, user, v, dim - 1) == POCKETREC_BUFFER_TOO_SMALL,
          "short embedding buffer");
    CHECK(pocketrec_user_embedding(m, user, v, dim) == POCKETREC_OK, "embedding");
    CHECK(pocketrec_user_embedding(m, UINT64_MAX, v, dim) == POCKETREC_NOT_FOUND, "no such user");
    CHECK(pocketrec_recommend_vector(m, v, dim - 1, NULL, 0, K, ids, NULL, &n) ==
              POCKETREC_INVALID_ARGUMENT, "vector of the wrong dimension");
    /* The user's own vector gives the user's ranking (the demo models have no user bias). */
    float scores[K];
    CHECK(pocketrec_recommend_vector(m, v, dim, NULL, 0, K, ids, scores, &n) == POCKETREC_OK &&
              n == want_len && memcmp(ids, want_items, n * sizeof ids[0]) == 0,
          "recommend_vector(user embedding) == recommend(user)");
    uint64_t one = want_items[0];
    float s = 0;
    CHECK(pocketrec_score(m, user, &one, 1, &s) == POCKETREC_OK && s == want_scores[0],
          "score of the top item %g vs %g", (double)s, (double)want_scores[0]);
    /* Excluding the top item shifts the list by one. */
    CHECK(pocketrec_recommend(m, user, &one, 1, K, ids, scores, &n) == POCKETREC_OK &&
              n == want_len && ids[0] == want_items[1], "exclude");
    CHECK(pocketrec_recommend(m, user, NULL, 0, 0, NULL, NULL, &n) == POCKETREC_OK && n == 0,
          "k = 0");
}

static int contains(const uint64_t *ids, size_t n, uint64_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

static int all_equal(const float *v, size_t n, float value) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != value) return 0;
    return 1;
}

static void test_fold_in(pocketrec_model *m) {
    static float v[MAX_DIM], w[MAX_DIM], own[MAX_DIM];
    uint32_t dim = 0;
    uint64_t ids[K], seen[FOLDED + 2];
    float scores[K], unobserved = -1, regularization = -1;
    size_t n = 0, used = 99, unknown = 99;
    CHECK(pocketrec_dim(m, &dim) == POCKETREC_OK && dim > 0 && dim <= MAX_DIM, "dim %u", dim);
    CHECK(pocketrec_fold_in_params(m, &unobserved, &regularization) == POCKETREC_OK &&
              unobserved >= 0 && regularization > 0,
          "fold_in_params %g %g", (double)unobserved, (double)regularization);
    CHECK(pocketrec_fold_in_params(m, NULL, NULL) == POCKETREC_OK, "fold_in_params(NULL, NULL)");

    /* A new user who liked the first user's top items. */
    memcpy(seen, want_items, FOLDED * sizeof seen[0]);
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, NULL, 0.0f, v, dim, &used, &unknown) ==
              POCKETREC_OK && used == FOLDED && unknown == 0,
          "fold_in: used %zu, unknown %zu", used, unknown);
    CHECK(!all_equal(v, dim, 0.0f), "the folded vector is not zero");
    memcpy(want_folded, v, dim * sizeof v[0]);
    model_dim = dim;
    CHECK(pocketrec_recommend_vector(m, v, dim, seen, FOLDED, K, ids, scores, &n) ==
              POCKETREC_OK && n == K, "recommend_vector(folded)");
    int excluded = 1;
    for (size_t i = 0; i < n; i++) excluded &= !contains(seen, FOLDED, ids[i]);
    CHECK(excluded, "the folded-in items are excluded");
    int sorted = 1;
    for (size_t i = 1; i < n; i++) sorted &= scores[i] <= scores[i - 1];
    CHECK(sorted, "best first");

    /* Weights of 1 are the default; unknown ids are skipped and counted; NULL counts. */
    float ones[FOLDED + 2] = {1, 1, 1, 1, 1};
    CHECK(pocketrec_fold_in(m, seen, ones, FOLDED, NULL, 0.0f, w, dim, NULL, NULL) ==
              POCKETREC_OK && memcmp(v, w, dim * sizeof v[0]) == 0, "weights of 1 = NULL weights");
    seen[FOLDED] = UINT64_MAX;
    seen[FOLDED + 1] = UINT64_MAX - 1;
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED + 2, NULL, 0.0f, w, dim, &used, &unknown) ==
              POCKETREC_OK && used == FOLDED && unknown == 2 && memcmp(v, w, dim * sizeof v[0]) == 0,
          "unknown ids skipped: used %zu, unknown %zu", used, unknown);
    ones[1] = 3.0f;
    CHECK(pocketrec_fold_in(m, seen, ones, FOLDED, NULL, 0.0f, w, dim, NULL, NULL) ==
              POCKETREC_OK && memcmp(v, w, dim * sizeof v[0]) != 0, "weights change the answer");

    /* A prior: the user's own vector. Updating in place equals a separate output. */
    CHECK(pocketrec_user_embedding(m, user, own, dim) == POCKETREC_OK, "user embedding");
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, own, 2.0f, w, dim, NULL, NULL) == POCKETREC_OK,
          "fold_in with a prior");
    memcpy(v, own, dim * sizeof v[0]);
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, v, 2.0f, v, dim, NULL, NULL) == POCKETREC_OK &&
              memcmp(v, w, dim * sizeof v[0]) == 0, "prior and out may be one array");
    CHECK(pocketrec_fold_in(m, NULL, NULL, 0, own, 1.0f, w, dim, &used, &unknown) ==
              POCKETREC_OK && used == 0 && unknown == 0, "a prior alone");

    /* Errors: out and the counts are left alone / reset. */
    for (uint32_t i = 0; i < dim; i++) w[i] = 42.0f;
    float nan_weights[FOLDED] = {1.0f, NAN, 1.0f};
    used = unknown = 5;
    CHECK(pocketrec_fold_in(m, seen, nan_weights, FOLDED, NULL, 0.0f, w, dim, &used, &unknown) ==
              POCKETREC_INVALID_ARGUMENT && used == 0 && unknown == 0 && all_equal(w, dim, 42.0f),
          "NaN weight");
    CHECK(strstr(pocketrec_last_error(), "weight") != NULL, "its message names the weight");
    float negative[FOLDED] = {1.0f, -0.5f, 1.0f};
    CHECK(pocketrec_fold_in(m, seen, negative, FOLDED, NULL, 0.0f, w, dim, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT, "negative weight");
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, NULL, 0.0f, w, dim - 1, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT, "out_len = dim - 1");
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, NULL, 0.0f, w, dim + 1, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT, "out_len = dim + 1");
    CHECK(pocketrec_fold_in(m, seen + FOLDED, NULL, 2, NULL, 0.0f, w, dim, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT, "only unknown items, no prior");
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, NULL, 1.0f, w, dim, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT, "a precision without a prior");
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, own, -1.0f, w, dim, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT, "a negative precision");
    CHECK(pocketrec_fold_in(NULL, seen, NULL, FOLDED, NULL, 0.0f, w, dim, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT, "fold_in(NULL model)");
    CHECK(pocketrec_fold_in(m, NULL, NULL, FOLDED, NULL, 0.0f, w, dim, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT, "fold_in(NULL items)");
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, NULL, 0.0f, NULL, dim, NULL, NULL) ==
              POCKETREC_INVALID_ARGUMENT && strcmp(pocketrec_last_error(), "out is NULL") == 0,
          "fold_in(NULL out)");
    CHECK(all_equal(w, dim, 42.0f), "out untouched by every failure");
    CHECK(pocketrec_fold_in_params(NULL, NULL, NULL) == POCKETREC_INVALID_ARGUMENT,
          "fold_in_params(NULL)");
}

static void test_no_fold_in(const char *path) {
    pocketrec_model *m = NULL;
    uint32_t dim = 0;
    uint64_t seen[FOLDED];
    static float v[MAX_DIM];
    size_t used = 7, unknown = 7;
    float unobserved = -1;
    memcpy(seen, want_items, sizeof seen);
    CHECK(pocketrec_open(path, &m) == POCKETREC_OK, "open the model without fold-in");
    CHECK(pocketrec_dim(m, &dim) == POCKETREC_OK && dim <= MAX_DIM, "its dim %u", dim);
    CHECK(pocketrec_fold_in(m, seen, NULL, FOLDED, NULL, 0.0f, v, dim, &used, &unknown) ==
              POCKETREC_UNSUPPORTED && used == 0 && unknown == 0, "fold_in without the section");
    CHECK(strstr(pocketrec_last_error(), "no fold-in section") != NULL, "its message");
    CHECK(pocketrec_fold_in_params(m, &unobserved, NULL) == POCKETREC_UNSUPPORTED &&
              unobserved == -1, "fold_in_params without the section");
    pocketrec_close(m);
}

static void test_closed_handle(void) {
    pocketrec_model *m = NULL;
    uint32_t dim;
    CHECK(pocketrec_open(model_path, &m) == POCKETREC_OK, "open");
    pocketrec_close(m);
    CHECK(pocketrec_dim(m, &dim) == POCKETREC_INVALID_ARGUMENT, "closed handle refused");
    CHECK(strstr(pocketrec_last_error(), "not an open model handle") != NULL, "its message");
    pocketrec_close(m); /* double close is a no-op */
    pocketrec_model *again = NULL;
    CHECK(pocketrec_open(model_path, &again) == POCKETREC_OK && again != m, "values not reused");
    pocketrec_close(again);
}

static void test_bad_files(void) {
    char path[] = "/tmp/pocketrec-abi-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        exit(2);
    }
    close(fd);
    pocketrec_model *m = NULL;
    size_t cuts[] = {0, 1, 63, 64, 200, file_len / 2, file_len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(path, file_bytes, cuts[i]);
        CHECK(pocketrec_open(path, &m) == POCKETREC_FORMAT && m == NULL, "truncated to %zu",
              cuts[i]);
        CHECK(pocketrec_open_bytes(file_bytes, cuts[i], &m) == POCKETREC_FORMAT,
              "bytes truncated to %zu", cuts[i]);
    }
    /* A flipped byte in the data: open may succeed, queries answer or fail, verify fails. */
    uint8_t *copy = malloc(file_len);
    memcpy(copy, file_bytes, file_len);
    copy[file_len - 100] ^= 0x55;
    write_file(path, copy, file_len);
    pocketrec_status s = pocketrec_open(path, &m);
    if (s == POCKETREC_OK) {
        uint64_t ids[K];
        size_t n;
        s = pocketrec_recommend(m, user, NULL, 0, K, ids, NULL, &n);
        CHECK(s == POCKETREC_OK || s == POCKETREC_FORMAT, "query on a damaged file: %d", s);
        CHECK(pocketrec_verify(m) == POCKETREC_FORMAT, "verify finds the flip");
        pocketrec_close(m);
    } else {
        CHECK(s == POCKETREC_FORMAT, "damaged file refused at open: %d", s);
    }
    free(copy);
    unlink(path);
    CHECK(pocketrec_open(path, &m) == POCKETREC_IO, "missing file");
    CHECK(pocketrec_open_fd(-1, 0, 10, &m) == POCKETREC_INVALID_ARGUMENT, "negative fd");
    CHECK(pocketrec_open_fd(1 << 20, 0, 10, &m) == POCKETREC_IO, "closed fd");
    fd = open(model_path, O_RDONLY);
    CHECK(pocketrec_open_fd(fd, 1, file_len, &m) == POCKETREC_INVALID_ARGUMENT,
          "range past the end of the file");
    CHECK(pocketrec_open_fd(fd, 0, 0, &m) == POCKETREC_INVALID_ARGUMENT, "zero length");
    close(fd);
}

#define BATCH_USERS 70

/* A batch of users equals pocketrec_recommend user by user (exclusions too, with
 * `offsets`/`excluded` as CSR), on `threads` threads; unknown users get count 0. */
static int batch_mismatches(pocketrec_model *m, const uint64_t *users, size_t n_users,
                            const size_t *offsets, const uint64_t *excluded, size_t threads) {
    static uint64_t items[BATCH_USERS * K];
    static float scores[BATCH_USERS * K];
    static size_t counts[BATCH_USERS];
    uint64_t one[K];
    float one_scores[K];
    size_t unknown = 99, want_unknown = 0, n = 0;
    int mismatches = 0;
    for (size_t i = 0; i < n_users * K; i++) items[i] = 0xDEADBEEF;
    pocketrec_status s = pocketrec_recommend_batch(m, users, n_users, offsets, excluded, K, threads,
                                                   items, scores, counts, &unknown);
    if (s != POCKETREC_OK) return -1;
    for (size_t i = 0; i < n_users; i++) {
        const uint64_t *ex = offsets ? excluded + offsets[i] : NULL;
        size_t n_ex = offsets ? offsets[i + 1] - offsets[i] : 0;
        s = pocketrec_recommend(m, users[i], ex, n_ex, K, one, one_scores, &n);
        if (s == POCKETREC_NOT_FOUND) {
            want_unknown++;
            mismatches += counts[i] != 0;
        } else if (s != POCKETREC_OK || counts[i] != n ||
                   memcmp(items + i * K, one, n * sizeof one[0]) != 0 ||
                   memcmp(scores + i * K, one_scores, n * sizeof one_scores[0]) != 0) {
            mismatches++;
        }
        for (size_t j = counts[i]; j < K; j++) mismatches += items[i * K + j] != 0xDEADBEEF;
    }
    return mismatches + (unknown != want_unknown);
}

static void test_batch(pocketrec_model *m) {
    static uint64_t users[BATCH_USERS], excluded[2 * BATCH_USERS], items[BATCH_USERS * K];
    static size_t offsets[BATCH_USERS + 1], counts[BATCH_USERS];
    static float scores[BATCH_USERS * K];
    size_t n_excluded = 0, unknown = 0;
    /* Users 0, 3, 6, ... (the demo models' ids are 0..199: a few past the end are unknown),
     * an unknown id, USER twice. Every other user excludes one of USER's top items and an
     * unknown id. */
    for (size_t i = 0; i < BATCH_USERS; i++) users[i] = 3 * i;
    users[5] = UINT64_MAX;
    users[6] = users[7] = user;
    for (size_t i = 0; i < BATCH_USERS; i++) {
        offsets[i] = n_excluded;
        if (i % 2 == 0) {
            excluded[n_excluded++] = want_items[i % K];
            excluded[n_excluded++] = UINT64_MAX - 1;
        }
    }
    offsets[BATCH_USERS] = n_excluded;
    size_t thread_counts[] = {1, 2, 4, 0};
    for (size_t t = 0; t < 4; t++) {
        size_t threads = thread_counts[t];
        int d = batch_mismatches(m, users, BATCH_USERS, NULL, NULL, threads);
        CHECK(d == 0, "batch of %d users on %zu threads equals recommend: %d mismatches",
              BATCH_USERS, threads, d);
        d = batch_mismatches(m, users, BATCH_USERS, offsets, excluded, threads);
        CHECK(d == 0, "batch with per-user exclusions on %zu threads: %d mismatches", threads, d);
    }
    CHECK(pocketrec_recommend_batch(m, users, BATCH_USERS, NULL, NULL, K, 2, items, NULL, counts,
                                    &unknown) == POCKETREC_OK &&
              counts[6] == want_len && memcmp(items + 6 * K, want_items, want_len * sizeof items[0]) == 0 &&
              counts[5] == 0 && unknown >= 1,
          "batch without scores: USER's items, the unknown id counted (%zu unknown)", unknown);
    CHECK(pocketrec_recommend_batch(m, NULL, 0, NULL, NULL, K, 0, NULL, NULL, NULL, &unknown) ==
              POCKETREC_OK && unknown == 0, "an empty batch");
    /* Misuse: an error status, counts reset to 0. */
    size_t bad_start[4] = {1, 1, 2, 2}, decreasing[4] = {0, 2, 1, 2};
    struct {
        pocketrec_status status;
        const char *what;
    } cases[] = {
        {pocketrec_recommend_batch(NULL, users, 3, NULL, NULL, K, 1, items, scores, counts, &unknown),
         "NULL model"},
        {pocketrec_recommend_batch(m, NULL, 3, NULL, NULL, K, 1, items, scores, counts, &unknown),
         "NULL users"},
        {pocketrec_recommend_batch(m, users, 3, NULL, NULL, K, 1, NULL, scores, counts, &unknown),
         "NULL out_items"},
        {pocketrec_recommend_batch(m, users, 3, NULL, NULL, K, 1, items, scores, NULL, &unknown),
         "NULL out_counts"},
        {pocketrec_recommend_batch(m, users, 3, NULL, NULL, SIZE_MAX, 1, items, scores, counts,
                                   &unknown),
         "n_users * k overflows"},
        {pocketrec_recommend_batch(m, users, 3, NULL, excluded, K, 1, items, scores, counts,
                                   &unknown),
         "exclude without offsets"},
        {pocketrec_recommend_batch(m, users, 3, bad_start, excluded, K, 1, items, scores, counts,
                                   &unknown),
         "offsets not starting at 0"},
        {pocketrec_recommend_batch(m, users, 3, decreasing, excluded, K, 1, items, scores, counts,
                                   &unknown),
         "decreasing offsets"},
        {pocketrec_recommend_batch(m, users, 3, offsets, NULL, K, 1, items, scores, counts,
                                   &unknown),
         "offsets without exclude"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(cases[i].status == POCKETREC_INVALID_ARGUMENT, "batch: %s", cases[i].what);
    counts[0] = counts[1] = counts[2] = 7;
    unknown = 7;
    CHECK(pocketrec_recommend_batch(m, users, 3, decreasing, excluded, K, 1, items, scores, counts,
                                    &unknown) == POCKETREC_INVALID_ARGUMENT &&
              counts[0] == 0 && counts[1] == 0 && counts[2] == 0 && unknown == 0,
          "a failed batch resets the counts");
    CHECK(strstr(pocketrec_last_error(), "decrease") != NULL, "its message");
}

#define VECTOR_USERS 8

/* A batch of user vectors (USER's own embedding, others scaled and with dimensions zeroed)
 * equals pocketrec_recommend_vector vector by vector. */
static void test_vector_batch(pocketrec_model *m) {
    static float vectors[VECTOR_USERS * MAX_DIM], scores[VECTOR_USERS * K];
    static uint64_t items[VECTOR_USERS * K];
    static size_t counts[VECTOR_USERS];
    uint64_t one[K];
    float one_scores[K];
    size_t n = 0;
    uint32_t dim = 0;
    CHECK(pocketrec_dim(m, &dim) == POCKETREC_OK && dim > 0 && dim <= MAX_DIM, "dim %u", dim);
    if (dim == 0 || dim > MAX_DIM) return;
    CHECK(pocketrec_user_embedding(m, user, vectors, dim) == POCKETREC_OK, "USER's embedding");
    for (size_t u = 1; u < VECTOR_USERS; u++)
        for (uint32_t d = 0; d < dim; d++)
            vectors[u * dim + d] = (d + u) % 3 == 0 ? 0.0f : vectors[d] * (float)(u % 3) - 0.01f * u;
    int mismatches = 0;
    size_t thread_counts[] = {1, 2, 0};
    for (size_t t = 0; t < 3; t++) {
        for (size_t i = 0; i < VECTOR_USERS * K; i++) items[i] = 0xDEADBEEF;
        CHECK(pocketrec_recommend_vector_batch(m, vectors, VECTOR_USERS, dim, NULL, NULL, K,
                                               thread_counts[t], items, scores, counts) ==
                  POCKETREC_OK,
              "vector batch on %zu threads", thread_counts[t]);
        for (size_t u = 0; u < VECTOR_USERS; u++) {
            pocketrec_status s = pocketrec_recommend_vector(m, vectors + u * dim, dim, NULL, 0, K,
                                                            one, one_scores, &n);
            mismatches += s != POCKETREC_OK || counts[u] != n ||
                          memcmp(items + u * K, one, n * sizeof one[0]) != 0 ||
                          memcmp(scores + u * K, one_scores, n * sizeof one_scores[0]) != 0;
            for (size_t j = counts[u]; j < K; j++) mismatches += items[u * K + j] != 0xDEADBEEF;
        }
    }
    CHECK(mismatches == 0, "vector batch equals recommend_vector: %d mismatches", mismatches);
    CHECK(counts[0] == want_len && memcmp(items, want_items, want_len * sizeof items[0]) == 0,
          "USER's own vector gives USER's items");
    counts[0] = 7;
    CHECK(pocketrec_recommend_vector_batch(m, vectors, 2, dim + 1, NULL, NULL, K, 1, items, scores,
                                           counts) == POCKETREC_INVALID_ARGUMENT &&
              counts[0] == 0 && strstr(pocketrec_last_error(), "dimension") != NULL,
          "another dimension is refused, the counts reset");
    CHECK(pocketrec_recommend_vector_batch(m, NULL, 0, dim, NULL, NULL, K, 0, NULL, NULL, NULL) ==
              POCKETREC_OK, "an empty vector batch");
}

struct worker {
    pocketrec_model *m;
    int mismatches;
};

static void *work(void *arg) {
    struct worker *w = arg;
    uint64_t ids[K];
    float scores[K];
    size_t n;
    for (int i = 0; i < ROUNDS; i++) {
        if (pocketrec_recommend(w->m, user, NULL, 0, K, ids, scores, &n) != POCKETREC_OK ||
            n != want_len || memcmp(ids, want_items, n * sizeof ids[0]) != 0 ||
            memcmp(scores, want_scores, n * sizeof scores[0]) != 0)
            w->mismatches++;
        if (i % 10 == 0) { /* fold-in from many threads at once */
            float v[MAX_DIM];
            for (uint32_t j = 0; j < model_dim; j++) v[j] = -1.0f;
            if (pocketrec_fold_in(w->m, want_items, NULL, FOLDED, NULL, 0.0f, v, model_dim, NULL,
                                  NULL) != POCKETREC_OK ||
                memcmp(v, want_folded, model_dim * sizeof v[0]) != 0)
                w->mismatches++;
        }
        if (i % 100 == 50) { /* batches, with their own threads, from many threads at once */
            uint64_t users[2] = {user, user}, items[2 * K];
            float scores[2 * K];
            size_t counts[2];
            if (pocketrec_recommend_batch(w->m, users, 2, NULL, NULL, K, 2, items, scores, counts,
                                          NULL) != POCKETREC_OK ||
                counts[0] != want_len || counts[1] != want_len ||
                memcmp(items + K, want_items, want_len * sizeof items[0]) != 0 ||
                memcmp(scores + K, want_scores, want_len * sizeof scores[0]) != 0)
                w->mismatches++;
        }
        if (i % 100 == 0) { /* errors stay on their thread */
            uint32_t d;
            if (pocketrec_dim(w->m, NULL) != POCKETREC_INVALID_ARGUMENT ||
                strcmp(pocketrec_last_error(), "out is NULL") != 0 ||
                pocketrec_dim(w->m, &d) != POCKETREC_OK || pocketrec_last_error()[0] != '\0')
                w->mismatches++;
        }
    }
    return NULL;
}

static void test_threads(pocketrec_model *m) {
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){m, 0};
        pthread_create(&threads[t], NULL, work, &workers[t]);
    }
    int mismatches = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        mismatches += workers[t].mismatches;
    }
    CHECK(mismatches == 0, "%d threads x %d queries: %d mismatches", THREADS, ROUNDS, mismatches);
}

/* A model exported with string item ids: the top items of `user` come back as the strings
 * the CLI prints (`expected`, one per line), sized by a first call with no buffer, and the
 * strings find the items. `no_strings` (may be NULL): the same exported with
 * --no-id-strings. */
static void test_id_strings(const char *path, const char *expected, const char *no_strings) {
    pocketrec_model *m = NULL, *bare = NULL;
    uint64_t items[5], id = 0, two[2] = {3, 3}, batch_items[10];
    float scores[5];
    size_t n = 0, counts[2];
    char line[256], name[256];
    FILE *want = fopen(expected, "r");
    CHECK(want != NULL, "open %s", expected);
    if (!want) return;
    CHECK(pocketrec_open(path, &m) == POCKETREC_OK, "open the string-id model");
    CHECK(pocketrec_recommend(m, 3, NULL, 0, 5, items, scores, &n) == POCKETREC_OK && n == 5,
          "recommend user 3 of the string-id model");
    CHECK(pocketrec_recommend_batch(m, two, 2, NULL, NULL, 5, 2, batch_items, NULL, counts, NULL) ==
              POCKETREC_OK && counts[0] == 5 && counts[1] == 5 &&
              memcmp(batch_items, items, sizeof items) == 0 &&
              memcmp(batch_items + 5, items, sizeof items) == 0,
          "batch of user 3 twice on the string-id model");
    if (no_strings) {
        CHECK(pocketrec_open(no_strings, &bare) == POCKETREC_OK,
              "open the model exported with --no-id-strings");
    }
    for (size_t i = 0; i < n && fgets(line, sizeof line, want); i++) {
        line[strcspn(line, "\n")] = 0;
        size_t len = 0;
        CHECK(pocketrec_item_id_str(m, items[i], NULL, 0, &len) == POCKETREC_BUFFER_TOO_SMALL &&
                  len == strlen(line), "item_id_str sizes rank %zu: %zu bytes", i, len);
        CHECK(pocketrec_item_id_str(m, items[i], name, sizeof name, NULL) == POCKETREC_OK &&
                  strcmp(name, line) == 0, "item_id_str rank %zu: %s equals the CLI's %s", i, name, line);
        CHECK(pocketrec_id_from_str(name, strlen(name)) == items[i], "id_from_str(%s)", name);
        CHECK(pocketrec_find_item_str(m, line, strlen(line), &id) == POCKETREC_OK && id == items[i],
              "find_item_str(%s) is the rank %zu item", line, i);
        if (bare) {
            size_t len = 99;
            CHECK(pocketrec_item_id_str(bare, items[i], name, sizeof name, &len) ==
                      POCKETREC_UNSUPPORTED && len == 0,
                  "--no-id-strings: item_id_str is UNSUPPORTED");
            CHECK(pocketrec_find_item_str(bare, line, strlen(line), &id) == POCKETREC_OK &&
                      id == items[i], "--no-id-strings: find_item_str(%s) by the hash", line);
        }
    }
    CHECK(pocketrec_item_id_str(m, 12345, name, sizeof name, NULL) == POCKETREC_NOT_FOUND,
          "an unknown id has no string");
    id = 5;
    CHECK(pocketrec_find_item_str(m, "sku-99999", 9, &id) == POCKETREC_NOT_FOUND && id == 0,
          "find_item_str of a string that is no item's");
    CHECK(strstr(pocketrec_last_error(), "sku-99999") != NULL, "its message names the string");
    CHECK(pocketrec_find_item_str(m, NULL, 3, &id) == POCKETREC_INVALID_ARGUMENT,
          "find_item_str(NULL)");
    CHECK(pocketrec_find_item_str(m, "sku-00000", 9, NULL) == POCKETREC_INVALID_ARGUMENT,
          "find_item_str(NULL out_id)");
    CHECK(pocketrec_find_item_str(m, "\xff\xfe", 2, &id) == POCKETREC_INVALID_ARGUMENT,
          "find_item_str of bytes that are not UTF-8");
    fclose(want);
    pocketrec_close(bare);
    pocketrec_close(m);
}

/* A model of integer item ids has no strings: both string calls are UNSUPPORTED. */
static void test_integer_ids_have_no_strings(pocketrec_model *m) {
    char name[64];
    size_t len = 99;
    uint64_t id = 99;
    CHECK(pocketrec_item_id_str(m, want_items[0], name, sizeof name, &len) ==
              POCKETREC_UNSUPPORTED && len == 0, "item_id_str on integer ids");
    CHECK(strstr(pocketrec_last_error(), "no strings") != NULL, "its message");
    CHECK(pocketrec_item_id_str(m, UINT64_MAX, NULL, 0, &len) == POCKETREC_UNSUPPORTED,
          "item_id_str on integer ids, any id");
    CHECK(pocketrec_find_item_str(m, "42", 2, &id) == POCKETREC_UNSUPPORTED && id == 0,
          "find_item_str on integer ids");
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4 && argc != 6 && argc != 7) {
        fprintf(stderr,
                "usage: %s MODEL USER [NO_FOLD_IN_MODEL [STRING_ID_MODEL EXPECTED "
                "[NO_STRINGS_MODEL]]]\n",
                argv[0]);
        return 2;
    }
    model_path = argv[1];
    user = strtoull(argv[2], NULL, 10);
    file_bytes = read_file(model_path, &file_len);
    if (!file_bytes || file_len < 200) {
        fprintf(stderr, "abi_test: cannot read %s\n", model_path);
        return 2;
    }
    CHECK(pocketrec_abi_version() == POCKETREC_ABI_VERSION, "ABI version");
    pocketrec_model *m = NULL;
    CHECK(pocketrec_open_bytes(file_bytes, file_len, &m) == POCKETREC_OK, "open_bytes");
    if (!m) return 1;
    CHECK(pocketrec_recommend(m, user, NULL, 0, K, want_items, want_scores, &want_len) ==
              POCKETREC_OK && want_len == K, "recommend");
    test_null_everywhere(m);
    test_buffers(m);
    test_fold_in(m);
    if (argc >= 4) test_no_fold_in(argv[3]);
    if (argc >= 6) test_id_strings(argv[4], argv[5], argc == 7 ? argv[6] : NULL);
    test_integer_ids_have_no_strings(m);
    test_batch(m);
    test_vector_batch(m);
    test_closed_handle();
    test_bad_files();
    test_threads(m);
    pocketrec_close(m);
    free(file_bytes);
    printf("abi_test: %d passed, %d failed\n", passed, failures);
    return failures == 0 ? 0 : 1;
}
