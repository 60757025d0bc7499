/*
 * update_test.c - signed models and patches through the C API: pocketrec_open_signed and
 * pocketrec_open_bytes_signed accept a model signed by the key and refuse an unsigned one, one
 * signed by another key and one with a changed byte, each with its own status;
 * pocketrec_apply_patch writes the new file (equal to NEW byte for byte) and refuses a patch for
 * another base without touching the target; pocketrec_apply_patch_bytes reports the size it
 * needs, writes into a buffer, and writes nothing for a damaged or unsigned patch. Run by
 * scripts/ffi-test.sh (also under valgrind).
 *
 *   update_test OLD NEW PATCH UNSIGNED_PATCH KEY OTHER_KEY UNSIGNED_NEW WORK_DIR
 *
 * OLD and NEW are models signed by KEY, PATCH (signed by KEY) turns OLD into NEW and
 * UNSIGNED_PATCH is the same patch unsigned; KEY and OTHER_KEY are files of 32 raw bytes
 * (public keys); UNSIGNED_NEW is NEW without its signature; WORK_DIR is a writable directory.
 *
 * Prints one line per failed check and ends with "N passed, N failed"; exit status 0 iff none
 * failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The whole file at `path` (malloc'd; the caller frees it), its length in *len. */
static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc(n > 0 ? (size_t)n : 1);
    if (!bytes || fread(bytes, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return bytes;
}

static void spill(const char *path, const uint8_t *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, len, f) != len) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static int same_file(const char *path, const uint8_t *bytes, size_t len) {
    size_t n;
    uint8_t *got = slurp(path, &n);
    int same = n == len && memcmp(got, bytes, len) == 0;
    free(got);
    return same;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr,
                "usage: update_test OLD NEW PATCH UNSIGNED_PATCH KEY OTHER_KEY UNSIGNED_NEW WORK_DIR\n");
        return 2;
    }
    const char *old_path = argv[1], *new_path = argv[2], *patch_path = argv[3];
    const char *unsigned_patch_path = argv[4], *unsigned_new_path = argv[7], *work = argv[8];
    size_t key_len, other_len, old_len, new_len, patch_len, unsigned_patch_len;
    uint8_t *key = slurp(argv[5], &key_len);
    uint8_t *other = slurp(argv[6], &other_len);
    if (key_len != 32 || other_len != 32) {
        fprintf(stderr, "keys must be 32 bytes\n");
        return 2;
    }
    uint8_t *old_bytes = slurp(old_path, &old_len);
    uint8_t *new_bytes = slurp(new_path, &new_len);
    uint8_t *patch = slurp(patch_path, &patch_len);
    uint8_t *unsigned_patch = slurp(unsigned_patch_path, &unsigned_patch_len);

    /* Signed models: accepted with the key, refused otherwise, each with its status. */
    pocketrec_model *m = NULL;
    pocketrec_status st = pocketrec_open_signed(new_path, key, &m);
    CHECK(st == POCKETREC_OK && m != NULL, "open_signed: status %d", (int)st);
    if (m) {
        uint32_t dim = 0;
        CHECK(pocketrec_dim(m, &dim) == POCKETREC_OK && dim > 0, "dim of the signed model");
        pocketrec_close(m);
    }
    st = pocketrec_open_signed(unsigned_new_path, key, &m);
    CHECK(st == POCKETREC_UNSIGNED && m == NULL, "unsigned model: status %d", (int)st);
    CHECK(strstr(pocketrec_last_error(), "unsigned") != NULL, "message: %s", pocketrec_last_error());
    st = pocketrec_open_signed(new_path, other, &m);
    CHECK(st == POCKETREC_WRONG_KEY && m == NULL, "other key: status %d", (int)st);
    CHECK(strstr(pocketrec_last_error(), "wrong key") != NULL, "message: %s", pocketrec_last_error());
    uint8_t *tampered = malloc(new_len);
    memcpy(tampered, new_bytes, new_len);
    tampered[new_len / 2] ^= 0x01;
    st = pocketrec_open_bytes_signed(tampered, new_len, key, &m);
    CHECK(st == POCKETREC_TAMPERED && m == NULL, "changed byte: status %d", (int)st);
    CHECK(strstr(pocketrec_last_error(), "tampered") != NULL, "message: %s", pocketrec_last_error());
    st = pocketrec_open_bytes_signed(new_bytes, new_len, key, &m);
    CHECK(st == POCKETREC_OK, "open_bytes_signed: status %d", (int)st);
    pocketrec_close(m);
    st = pocketrec_open_bytes_signed(new_bytes, new_len, NULL, &m);
    CHECK(st == POCKETREC_INVALID_ARGUMENT, "NULL key: status %d", (int)st);

    /* Patches between files, atomically. */
    char target[4096], untouched[4096];
    snprintf(target, sizeof target, "%s/device.prec", work);
    snprintf(untouched, sizeof untouched, "%s/untouched.prec", work);
    spill(target, old_bytes, old_len);
    st = pocketrec_apply_patch(target, patch_path, target, key);
    CHECK(st == POCKETREC_OK, "apply_patch in place: status %d", (int)st);
    CHECK(same_file(target, new_bytes, new_len), "the patched file equals NEW");
    st = pocketrec_open_signed(target, key, &m);
    CHECK(st == POCKETREC_OK, "the patched file opens signed: status %d", (int)st);
    pocketrec_close(m);
    spill(untouched, new_bytes, new_len);
    st = pocketrec_apply_patch(untouched, patch_path, untouched, key);
    CHECK(st == POCKETREC_WRONG_BASE, "another base: status %d", (int)st);
    CHECK(same_file(untouched, new_bytes, new_len), "the target is untouched");
    st = pocketrec_apply_patch(old_path, unsigned_patch_path, untouched, key);
    CHECK(st == POCKETREC_UNSIGNED, "unsigned patch with a key: status %d", (int)st);
    CHECK(same_file(untouched, new_bytes, new_len), "the target is untouched");
    st = pocketrec_apply_patch(old_path, patch_path, untouched, other);
    CHECK(st == POCKETREC_WRONG_KEY, "patch with another key: status %d", (int)st);
    st = pocketrec_apply_patch(old_path, unsigned_patch_path, target, NULL);
    CHECK(st == POCKETREC_OK && same_file(target, new_bytes, new_len), "unsigned patch, no key");

    /* Patches in memory. */
    size_t needed = 0;
    st = pocketrec_apply_patch_bytes(old_bytes, old_len, patch, patch_len, key, NULL, 0, &needed);
    CHECK(st == POCKETREC_BUFFER_TOO_SMALL && needed == new_len, "size query: status %d, %zu",
          (int)st, needed);
    uint8_t *out = calloc(needed, 1);
    size_t got = 0;
    st = pocketrec_apply_patch_bytes(old_bytes, old_len, patch, patch_len, key, out, needed, &got);
    CHECK(st == POCKETREC_OK && got == new_len && memcmp(out, new_bytes, new_len) == 0,
          "apply_patch_bytes: status %d", (int)st);
    memset(out, 0, needed);
    unsigned_patch[unsigned_patch_len - 3] ^= 0x40;
    st = pocketrec_apply_patch_bytes(old_bytes, old_len, unsigned_patch, unsigned_patch_len, NULL,
                                     out, needed, &got);
    CHECK(st == POCKETREC_BAD_PATCH, "damaged patch: status %d", (int)st);
    int untouched_buffer = 1;
    for (size_t i = 0; i < needed; i++) untouched_buffer &= out[i] == 0;
    CHECK(untouched_buffer, "a damaged patch writes nothing");
    st = pocketrec_apply_patch_bytes(new_bytes, new_len, patch, patch_len, NULL, out, needed, &got);
    CHECK(st == POCKETREC_WRONG_BASE, "another base in memory: status %d", (int)st);
    st = pocketrec_apply_patch_bytes(old_bytes, old_len, NULL, 5, NULL, out, needed, &got);
    CHECK(st == POCKETREC_INVALID_ARGUMENT, "NULL patch: status %d", (int)st);

    free(out);
    free(tampered);
    free(key);
    free(other);
    free(old_bytes);
    free(new_bytes);
    free(patch);
    free(unsigned_patch);
    printf("%d passed, %d failed\n", passed, failures);
    return failures == 0 ? 0 : 1;
}
