// core.local: `sh -c CMD` through the process interface (`--allow-exec sh`).
#include "wasmflow.h"

#include <string.h>

// The length of the valid UTF-8 sequence at p[0..n), or 0 if it is not one.
static size_t utf8_len(const uint8_t *p, size_t n) {
  uint8_t c = p[0];
  size_t len;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) len = 2, min = 0x80;
  else if ((c & 0xf0) == 0xe0) len = 3, min = 0x800;
  else if ((c & 0xf8) == 0xf0) len = 4, min = 0x10000;
  else return 0;
  if (len > n) return 0;
  uint32_t cp = c & (0x7f >> len);
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// `out` becomes `bytes` as UTF-8, each invalid byte replaced by U+FFFD:
// a WIT string must be valid UTF-8, and a program's output need not be.
static void lossy(action_string_t *out, const action_list_u8_t *bytes) {
  uint8_t *buf = malloc(bytes->len * 3 + 1);
  size_t o = 0;
  for (size_t i = 0; i < bytes->len;) {
    size_t len = utf8_len(bytes->ptr + i, bytes->len - i);
    if (len == 0) {
      memcpy(buf + o, "\xef\xbf\xbd", 3);
      o += 3;
      i += 1;
    } else {
      memcpy(buf + o, bytes->ptr + i, len);
      o += len;
      i += len;
    }
  }
  out->ptr = buf;
  out->len = o;
}

// `s` as a JSON string (quoted, escaped), appended to `out` at `*at`;
// `out` holds at least 6 bytes per byte of `s`, plus 2.
static void json_string(char *out, size_t *at, const action_string_t *s) {
  out[(*at)++] = '"';
  for (size_t i = 0; i < s->len; i++) {
    uint8_t c = s->ptr[i];
    if (c == '"' || c == '\\') {
      out[(*at)++] = '\\';
      out[(*at)++] = (char)c;
    } else if (c < 0x20) {
      static const char hex[] = "0123456789abcdef";
      memcpy(out + *at, "\\u00", 4);
      out[*at + 4] = hex[c >> 4];
      out[*at + 5] = hex[c & 15];
      *at += 6;
    } else {
      out[(*at)++] = (char)c;
    }
  }
  out[(*at)++] = '"';
}

bool exports_action_run(action_string_t *cmd, action_local_result_t *ret, action_error_t *err) {
  char *command = wasmflow_cstring(cmd);
  action_string_free(cmd);
  const char *argv[] = {"-c", command};
  wasmflow_output out;
  bool ran = wasmflow_run_argv(err, &out, "sh", 2, argv, NULL, 0, false);
  free(command);
  if (!ran) return false;
  lossy(&ret->stdout_, &out.stdout_);
  lossy(&ret->stderr_, &out.stderr_);
  ret->return_code = out.status;
  ret->succeeded = out.status == 0;
  ret->failed = !ret->succeeded;
  wasmflow_output_free(&out);
  if (ret->succeeded) return true;

  action_string_t code;
  wasmflow_stringf(&code, ",\"return_code\":%d}", (int)ret->return_code);
  size_t cap = 6 * (ret->stdout_.len + ret->stderr_.len) + code.len + 32;
  char *details = malloc(cap);
  size_t at = 0;
  memcpy(details + at, "{\"stdout\":", 10);
  at += 10;
  json_string(details, &at, &ret->stdout_);
  memcpy(details + at, ",\"stderr\":", 10);
  at += 10;
  json_string(details, &at, &ret->stderr_);
  memcpy(details + at, code.ptr, code.len);
  details[at + code.len] = 0;
  action_string_free(&code);
  action_string_t message;
  wasmflow_stringf(&message, "sh -c exited with status %d", (int)ret->return_code);
  char *text = wasmflow_cstring(&message);
  action_string_free(&message);
  bool failed = wasmflow_fail_details(err, "nonzero-exit", text, false, details);
  free(text);
  free(details);
  action_local_result_free(ret);
  return failed;
}
