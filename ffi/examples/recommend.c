/*
 * recommend.c - prints the top-k items for a user of a .prec model, through the C API only.
 *
 *   recommend [--open=path|copy|bytes|fd[:OFFSET:LENGTH]] MODEL USER K [EXCLUDED_ITEM...]
 *   recommend [--open=...] --fold-in=ITEM,ITEM,... MODEL K [EXCLUDED_ITEM...]
 *
 * The output is one JSON line in the shape of `pocketrec recommend --json`:
 *   {"user":42,"items":[{"item":1234,"score":3.21000004},...]}
 * with scores printed to 9 significant digits (enough to round-trip a float exactly).
 * `fd:OFFSET:LENGTH` opens LENGTH bytes at OFFSET of MODEL, the way an Android app opens an
 * uncompressed asset inside its APK. With `--fold-in`, the user is not in the model: their
 * vector is folded in from the items they interacted with (pocketrec_fold_in, which needs the
 * model's fold-in section) and recommended for with those items excluded
 * (pocketrec_recommend_vector), as `pocketrec recommend MODEL --items ITEM,... --json` does:
 *   {"folded_from":[3,8],"unknown":0,"items":[{"item":1234,"score":0.0807],...]}
 * Ids are integers (use pocketrec_id_from_str() for string ids). Exit status: 0 on success, 1
 * on any error (with the library's message).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pocketrec.h"

static int failed(const char *what, pocketrec_status status) {
    fprintf(stderr, "recommend: %s failed (status %d): %s\n", what, (int)status,
            pocketrec_last_error());
    return 1;
}

static int parse_u64(const char *text, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') return 0;
    *out = (uint64_t)value;
    return 1;
}

/* Parses a comma-separated list of integer ids into a malloc'ed array. */
static int parse_id_list(const char *text, uint64_t **out, size_t *n) {
    size_t count = 1;
    for (const char *c = text; *c; c++) count += *c == ',';
    uint64_t *ids = calloc(count, sizeof *ids);
    if (!ids) return 0;
    const char *start = text;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        char token[32];
        if (len == 0 || len >= sizeof token) break;
        memcpy(token, start, len);
        token[len] = '\0';
        if (!parse_u64(token, &ids[i])) break;
        if (i + 1 == count) {
            *out = ids;
            *n = count;
            return 1;
        }
        start = end + 1;
    }
    free(ids);
    return 0;
}

/* Reads a whole file into a malloc'ed buffer (for --open=bytes). */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            data = malloc(size > 0 ? (size_t)size : 1);
            if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
                free(data);
                data = NULL;
            }
            *len = (size_t)size;
        }
    }
    fclose(f);
    return data;
}

int main(int argc, char **argv) {
    const char *mode = "path", *fold_list = NULL;
    int arg = 1;
    for (; arg < argc && strncmp(argv[arg], "--", 2) == 0; arg++) {
        if (strncmp(argv[arg], "--open=", 7) == 0) {
            mode = argv[arg] + 7;
        } else if (strncmp(argv[arg], "--fold-in=", 10) == 0) {
            fold_list = argv[arg] + 10;
        } else {
            arg = argc; /* unknown option: print the usage */
        }
    }
    if (argc - arg < (fold_list ? 2 : 3)) {
        fprintf(stderr, "usage: %s [--open=path|copy|bytes|fd[:OFFSET:LENGTH]] MODEL USER K "
                        "[EXCLUDED_ITEM...]\n"
                        "       %s [--open=...] --fold-in=ITEM,ITEM,... MODEL K "
                        "[EXCLUDED_ITEM...]\n", argv[0], argv[0]);
        return 2;
    }
    const char *path = argv[arg++];
    uint64_t user = 0, k64 = 0;
    if ((!fold_list && !parse_u64(argv[arg++], &user)) || !parse_u64(argv[arg++], &k64) ||
        k64 > 100000) {
        fprintf(stderr, "recommend: USER must be an integer id and K an integer <= 100000\n");
        return 2;
    }
    /* With --fold-in, the folded-in items come first in the exclusion list. */
    uint64_t *folded = NULL;
    size_t n_folded = 0;
    if (fold_list && !parse_id_list(fold_list, &folded, &n_folded)) {
        fprintf(stderr, "recommend: --fold-in wants comma-separated integer item ids\n");
        return 2;
    }
    size_t k = (size_t)k64, n_exclude = n_folded + (size_t)(argc - arg);
    uint64_t *exclude = calloc(n_exclude ? n_exclude : 1, sizeof *exclude);
    uint64_t *items = calloc(k ? k : 1, sizeof *items);
    float *scores = calloc(k ? k : 1, sizeof *scores);
    if (!exclude || !items || !scores) return 1;
    if (n_folded) memcpy(exclude, folded, n_folded * sizeof *folded);
    for (size_t i = n_folded; i < n_exclude; i++) {
        const char *text = argv[arg + (int)(i - n_folded)];
        if (!parse_u64(text, &exclude[i])) {
            fprintf(stderr, "recommend: excluded item '%s' is not an integer id\n", text);
            return 2;
        }
    }
    if (pocketrec_abi_version() != POCKETREC_ABI_VERSION) {
        fprintf(stderr, "recommend: header ABI %u, library ABI %u\n", POCKETREC_ABI_VERSION,
                pocketrec_abi_version());
        return 1;
    }

    pocketrec_model *model = NULL;
    pocketrec_status status;
    uint8_t *bytes = NULL; /* must outlive the handle for --open=bytes */
    if (strcmp(mode, "path") == 0) {
        status = pocketrec_open(path, &model);
    } else if (strcmp(mode, "copy") == 0) {
        status = pocketrec_open_copy(path, &model);
    } else if (strcmp(mode, "bytes") == 0) {
        size_t len = 0;
        bytes = read_file(path, &len);
        if (!bytes) {
            fprintf(stderr, "recommend: cannot read %s: %s\n", path, strerror(errno));
            return 1;
        }
        status = pocketrec_open_bytes(bytes, len, &model);
    } else if (strncmp(mode, "fd", 2) == 0) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            fprintf(stderr, "recommend: cannot open %s: %s\n", path, strerror(errno));
            return 1;
        }
        uint64_t offset = 0, length = 0;
        struct stat st;
        if (fstat(fd, &st) == 0) length = (uint64_t)st.st_size;
        if (mode[2] == ':' && sscanf(mode + 3, "%" SCNu64 ":%" SCNu64, &offset, &length) != 2) {
            fprintf(stderr, "recommend: --open=fd:OFFSET:LENGTH expected\n");
            return 2;
        }
        status = pocketrec_open_fd(fd, offset, length, &model);
        close(fd); /* the handle keeps its own mapping */
    } else {
        fprintf(stderr, "recommend: unknown --open mode '%s'\n", mode);
        return 2;
    }
    if (status != POCKETREC_OK) return failed("open", status);

    uint32_t dim = 0;
    uint64_t n_users = 0, n_items = 0;
    if ((status = pocketrec_dim(model, &dim)) != POCKETREC_OK) return failed("dim", status);
    if ((status = pocketrec_counts(model, &n_users, &n_items)) != POCKETREC_OK)
        return failed("counts", status);
    fprintf(stderr, "pocketrec %s: %s: d = %u, %" PRIu64 " users, %" PRIu64 " items (opened by %s)\n",
            pocketrec_version(), path, dim, n_users, n_items, mode);

    size_t n = 0;
    if (fold_list) {
        /* A new user: their vector from their items, then the top-k for that vector. */
        float *vector = calloc(dim ? dim : 1, sizeof *vector);
        size_t used = 0, unknown = 0;
        if (!vector) return 1;
        status = pocketrec_fold_in(model, folded, NULL, n_folded, NULL, 0.0f, vector, dim, &used,
                                   &unknown);
        if (status != POCKETREC_OK) return failed("fold_in", status);
        fprintf(stderr, "folded in from %zu items (%zu not in the model)\n", used, unknown);
        status = pocketrec_recommend_vector(model, vector, dim, exclude, n_exclude, k, items,
                                            scores, &n);
        free(vector);
        if (status != POCKETREC_OK) return failed("recommend_vector", status);
        printf("{\"folded_from\":[");
        for (size_t i = 0; i < n_folded; i++) printf("%s%" PRIu64, i ? "," : "", folded[i]);
        printf("],\"unknown\":%zu,\"items\":[", unknown);
    } else {
        status = pocketrec_recommend(model, user, exclude, n_exclude, k, items, scores, &n);
        if (status != POCKETREC_OK) return failed("recommend", status);
        printf("{\"user\":%" PRIu64 ",\"items\":[", user);
    }
    for (size_t i = 0; i < n; i++)
        printf("%s{\"item\":%" PRIu64 ",\"score\":%.9g}", i ? "," : "", items[i], (double)scores[i]);
    printf("]}\n");

    pocketrec_close(model);
    free(bytes); /* only after pocketrec_close */
    free(folded);
    free(exclude);
    free(items);
    free(scores);
    return 0;
}
