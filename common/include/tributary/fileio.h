/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whole-buffer file I/O with the retries and durability steps every
 * caller needs: positional reads and writes that loop over short
 * transfers and EINTR, a directory fsync, and an atomic replacement of a
 * small file (tmp, fdatasync, rename, fsync of the directory), and a
 * mkdir that is durable (the parent fsynced).
 */
#ifndef TRIBUTARY_FILEIO_H
#define TRIBUTARY_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Writes all n bytes at off. 0, or -errno (-EIO when a write makes no progress). */
int trib_pwrite_all(int fd, const void *p, size_t n, uint64_t off);
/* Reads up to n bytes at off, stopping early only at the end of the file.
   Returns the bytes read, or -errno. */
ssize_t trib_pread_all(int fd, void *p, size_t n, uint64_t off);
/* fsync of a directory, so entries created, renamed or removed in it
   survive a power loss. 0 or -errno. */
int trib_fsync_dir(const char *dir);
/* Replaces path with len bytes: path.tmp is written and fdatasync'ed, then
   renamed over path, then path's directory is fsynced. 0 or -errno; on an
   error path is unchanged and path.tmp is removed. */
int trib_write_file_atomic(const char *path, const void *data, size_t len);
/* The same, creating the file with `mode` (0600 for secrets) instead of 0644. */
int trib_write_file_atomic_mode(const char *path, const void *data, size_t len, mode_t mode);
/* With TRIB_WRITE_NOSYNC: the rename is atomic but nothing is synced (a file that
   may be lost at a power loss, as a snapshot that is rebuilt when missing). */
#define TRIB_WRITE_NOSYNC 1u
int trib_write_file_atomic_flags(const char *path, const void *data, size_t len, mode_t mode,
                                 unsigned flags);
/* For text written with stdio into open_memstream(text, len): closes fp, then
   trib_write_file_atomic_flags() of what it holds (-ENOMEM when the stream failed), and frees
   *text. 0 or -errno. */
int trib_write_memstream_atomic(const char *path, FILE *fp, char **text, size_t *len, mode_t mode,
                                unsigned flags);
/* mkdir(path, mode) whose entry survives a power loss: when it creates
   path, the parent directory is fsynced before it returns. An existing
   directory is left as it is (0). 0, -ENOTDIR when path is something
   else, or -errno (the directory may then exist without being durable). */
int trib_mkdir_durable(const char *path, mode_t mode);
/* mkdir -p with trib_mkdir_durable for each component it creates: data
   synced into a directory whose own entry is not on disk would vanish with
   it at a power loss. 0 or -errno. */
int trib_mkdirs_durable(const char *path, mode_t mode);

#endif
