/* SPDX-License-Identifier: Apache-2.0 */
#include "tributary/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int trib_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (w == 0) {
            return -EIO;
        }
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

ssize_t trib_pread_all(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* The directory holding path ("." for a bare name, "/" for "/x"). */
static void parent_dir(const char *path, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s", path);
    char *slash = strrchr(dir, '/');
    while (slash != NULL && slash > dir && slash[1] == '\0') {
        *slash = '\0'; /* "a/b/" names b */
        slash = strrchr(dir, '/');
    }
    if (slash == dir) {
        slash[1] = '\0';
    } else if (slash) {
        *slash = '\0';
    } else {
        snprintf(dir, cap, ".");
    }
}

int trib_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

int trib_write_file_atomic(const char *path, const void *data, size_t len)
{
    return trib_write_file_atomic_mode(path, data, len, 0644);
}

int trib_write_file_atomic_mode(const char *path, const void *data, size_t len, mode_t mode)
{
    return trib_write_file_atomic_flags(path, data, len, mode, 0);
}

int trib_write_file_atomic_flags(const char *path, const void *data, size_t len, mode_t mode,
                                 unsigned flags)
{
    bool sync = !(flags & TRIB_WRITE_NOSYNC);
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    unlink(tmp); /* a stale tmp file keeps its mode: start afresh */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return -errno;
    }
    int rc = trib_pwrite_all(fd, data, len, 0);
    if (rc == 0 && sync && fdatasync(fd) != 0) {
        rc = -errno;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
    }
    if (rc) {
        unlink(tmp);
        return rc;
    }
    if (!sync) {
        return 0;
    }
    parent_dir(path, dir, sizeof(dir));
    return trib_fsync_dir(dir);
}

int trib_write_memstream_atomic(const char *path, FILE *fp, char **text, size_t *len, mode_t mode,
                                unsigned flags)
{
    int rc = ferror(fp) ? -ENOMEM : 0;
    if (fclose(fp) != 0 && rc == 0) {
        rc = -ENOMEM;
    }
    if (rc == 0) {
        rc = trib_write_file_atomic_flags(path, *text, *len, mode, flags);
    }
    free(*text);
    *text = NULL;
    return rc;
}

int trib_mkdir_durable(const char *path, mode_t mode)
{
    char dir[PATH_MAX];
    if (strlen(path) >= sizeof(dir)) {
        return -ENAMETOOLONG;
    }
    if (mkdir(path, mode) != 0) {
        struct stat st;
        if (errno != EEXIST) {
            return -errno;
        }
        if (stat(path, &st) != 0) {
            return -errno;
        }
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    }
    parent_dir(path, dir, sizeof(dir));
    return trib_fsync_dir(dir);
}

int trib_mkdirs_durable(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            int rc = trib_mkdir_durable(tmp, mode);
            if (rc != 0) {
                return rc;
            }
            *p = '/';
        }
    }
    return trib_mkdir_durable(tmp, mode);
}
