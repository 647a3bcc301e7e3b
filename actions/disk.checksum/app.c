// disk.checksum: stream a file through SHA-256 and return its digest and
// size, with progress every N MiB. The file is read through WASI, so its
// directory must be granted (`--allow-read DIR`, or a write grant).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/libc-find-relpath.h>

#include "wasmflow.h"

// ---- SHA-256 (FIPS 180-4) ----

typedef struct {
  uint32_t h[8];
  uint64_t bytes;
  uint8_t block[64];
  size_t used;
} sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_init(sha256 *s) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, h0, sizeof h0);
  s->bytes = 0;
  s->used = 0;
}

static void sha256_block(sha256 *s, const uint8_t *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
  uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  s->h[0] += a;
  s->h[1] += b;
  s->h[2] += c;
  s->h[3] += d;
  s->h[4] += e;
  s->h[5] += f;
  s->h[6] += g;
  s->h[7] += h;
}

static void sha256_update(sha256 *s, const uint8_t *p, size_t n) {
  s->bytes += n;
  if (s->used > 0) {
    size_t take = 64 - s->used < n ? 64 - s->used : n;
    memcpy(s->block + s->used, p, take);
    s->used += take;
    p += take;
    n -= take;
    if (s->used < 64) return;
    sha256_block(s, s->block);
    s->used = 0;
  }
  for (; n >= 64; p += 64, n -= 64) sha256_block(s, p);
  memcpy(s->block, p, n);
  s->used = n;
}

static void sha256_hex(sha256 *s, char out[65]) {
  uint64_t bits = s->bytes * 8;
  uint8_t pad = 0x80;
  sha256_update(s, &pad, 1);
  uint8_t zero = 0;
  while (s->used != 56) sha256_update(s, &zero, 1);
  uint8_t len[8];
  for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
  sha256_update(s, len, 8);
  for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", s->h[i]);
}

// ---- the action ----

#define MIB (1024u * 1024u)

// Whether a granted (preopened) directory holds `path`: outside them, WASI
// libc says only ENOENT.
static bool granted(const char *path) {
  const char *prefix, *relative;
  if (path[0] == '/') return __wasilibc_find_abspath(path, &prefix, &relative) >= 0;
  char buf[4096], *rel = buf;
  return __wasilibc_find_relpath(path, &prefix, &rel, sizeof buf) >= 0;
}

// An error from open or read, as the action's error.
static bool fail_io(action_error_t *err, const char *path, const char *doing, int e) {
  if (e == ENOTCAPABLE || e == EACCES || e == EPERM || (e == ENOENT && !granted(path)))
    return wasmflow_failf(err, "denied", false,
                          "cannot %s %s: its directory is not granted (--allow-read DIR)", doing,
                          path);
  if (e == ENOENT || e == ENOTDIR)
    return wasmflow_failf(err, "not-found", false, "cannot %s %s: no such file", doing, path);
  if (e == EISDIR)
    return wasmflow_failf(err, "invalid-spec", false, "cannot %s %s: it is a directory", doing,
                          path);
  return wasmflow_failf(err, "read-failed", true, "cannot %s %s: %s", doing, path, strerror(e));
}

static bool checksum(const char *path, uint32_t every_mib, const char *expect,
                     action_checksum_t *ret, action_error_t *err) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return fail_io(err, path, "open", errno);
  struct stat st;
  const bool known = fstat(fd, &st) == 0;
  if (known && S_ISDIR(st.st_mode)) {
    close(fd);
    return fail_io(err, path, "read", EISDIR);
  }
  // The size the progress is counted against (a file may still grow).
  const uint64_t total = known && st.st_size > 0 ? (uint64_t)st.st_size : 0;
  uint8_t *buf = (uint8_t *)malloc(MIB);
  if (buf == NULL) {
    close(fd);
    return wasmflow_fail(err, "out-of-memory", "no memory for a 1 MiB read buffer", true);
  }
  sha256 s;
  sha256_init(&s);
  uint64_t read_so_far = 0, next_report = (uint64_t)every_mib * MIB;
  for (;;) {
    ssize_t n = read(fd, buf, MIB);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return fail_io(err, path, "read", e);
    }
    if (n == 0) break;
    sha256_update(&s, buf, (size_t)n);
    read_so_far += (uint64_t)n;
    if (every_mib > 0 && read_so_far >= next_report) {
      char msg[64];
      snprintf(msg, sizeof msg, "%llu MiB read", (unsigned long long)(read_so_far / MIB));
      wasmflow_progress(read_so_far, total > read_so_far ? total : read_so_far, msg);
      next_report += (uint64_t)every_mib * MIB;
    }
  }
  free(buf);
  close(fd);
  char hex[65];
  sha256_hex(&s, hex);
  wasmflow_progress(read_so_far, read_so_far, "done");
  if (expect != NULL && strcasecmp(expect, hex) != 0)
    return wasmflow_failf(err, "checksum-mismatch", false, "%s has SHA-256 %s, expected %s", path,
                          hex, expect);
  wasmflow_info("%s: %llu bytes, sha256 %s", path, (unsigned long long)read_so_far, hex);
  wasmflow_string(&ret->path, path);
  wasmflow_string(&ret->sha256, hex);
  ret->size_bytes = read_so_far;
  return true;
}

bool exports_action_run(action_file_spec_t *spec, action_checksum_t *ret, action_error_t *err) {
  char *path = wasmflow_cstring(&spec->path);
  const size_t path_len = spec->path.len;
  const bool has_expect = spec->expect.is_some;
  char *expect = has_expect ? wasmflow_cstring(&spec->expect.val) : NULL;
  const uint32_t every_mib = spec->progress_mib;
  action_file_spec_free(spec);  // the arguments are the action's to free
  bool ok;
  if (path == NULL || (has_expect && expect == NULL))
    ok = wasmflow_fail(err, "out-of-memory", "no memory for the spec", true);
  else if (path[0] == '\0')
    ok = wasmflow_fail_details(err, "invalid-spec", "path must not be empty", false,
                               "{\"field\":\"path\"}");
  else if (strlen(path) != path_len)
    ok = wasmflow_fail_details(err, "invalid-spec", "path must not contain NUL", false,
                               "{\"field\":\"path\"}");
  else
    ok = checksum(path, every_mib, expect, ret, err);
  free(path);
  free(expect);
  return ok;
}
