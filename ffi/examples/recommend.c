/*
 * recommend.c - prints the top-k items for a user of a .prec model, through the C API only.
 *
 *   recommend [--open=path|copy|bytes|fd[:OFFSET:LENGTH]] MODEL USER K [EXCLUDED_ITEM...]
 *
 * The output is one JSON line in the shape of `pocketrec recommend --json`:
 *   {"user":42,"items":[{"item":1234,"score":3.21000004},...]}
 * with scores printed to 9 significant digits (enough to round-trip a float exactly).
 * `fd:OFFSET:LENGTH` opens LENGTH bytes at OFFSET of MODEL, the way an Android app opens an
 * uncompressed asset inside its APK. Ids are integers (use pocketrec_id_from_str() for
 * string ids). Exit status: 0 on success, 1 on any error (with the library's message).
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
    const char *mode = "path";
    int arg = 1;
    if (argc > 1 && strncmp(argv[1], "--open=", 7) == 0) mode = argv[arg++] + 7;
    if (argc - arg < 3) {
        fprintf(stderr, "usage: %s [--open=path|copy|bytes|fd[:OFFSET:LENGTH]] MODEL USER K "
                        "[EXCLUDED_ITEM...]\n", argv[0]);
        return 2;
    }
    const char *path = argv[arg];
    uint64_t user = 0, k64 = 0;
    if (!parse_u64(argv[arg + 1], &user) || !parse_u64(argv[arg + 2], &k64) || k64 > 100000) {
        fprintf(stderr, "recommend: USER must be an integer id and K an integer <= 100000\n");
        return 2;
    }
    size_t k = (size_t)k64, n_exclude = (size_t)(argc - arg - 3);
    uint64_t *exclude = calloc(n_exclude ? n_exclude : 1, sizeof *exclude);
    uint64_t *items = calloc(k ? k : 1, sizeof *items);
    float *scores = calloc(k ? k : 1, sizeof *scores);
    if (!exclude || !items || !scores) return 1;
    for (size_t i = 0; i < n_exclude; i++) {
        if (!parse_u64(argv[arg + 3 + (int)i], &exclude[i])) {
            fprintf(stderr, "recommend: excluded item '%s' is not an integer id\n",
                    argv[arg + 3 + (int)i]);
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
    status = pocketrec_recommend(model, user, exclude, n_exclude, k, items, scores, &n);
    if (status != POCKETREC_OK) return failed("recommend", status);
    printf("{\"user\":%" PRIu64 ",\"items\":[", user);
    for (size_t i = 0; i < n; i++)
        printf("%s{\"item\":%" PRIu64 ",\"score\":%.9g}", i ? "," : "", items[i], (double)scores[i]);
    printf("]}\n");

    pocketrec_close(model);
    free(bytes); /* only after pocketrec_close */
    free(exclude);
    free(items);
    free(scores);
    return 0;
}
