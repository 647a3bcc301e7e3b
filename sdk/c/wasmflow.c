/* wasmflow's C SDK: see wasmflow.h. Compiled with the action by
 * `wasmflow build` (every `.c` file beside the source is). */
#include "wasmflow.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A malloc'd string formatted like vprintf, or NULL if out of memory. */
static char *vformat(const char *fmt, va_list args) {
  va_list again;
  va_copy(again, args);
  int n = vsnprintf(NULL, 0, fmt, args);
  char *buf = n < 0 ? NULL : (char *)malloc((size_t)n + 1);
  if (buf != NULL) vsnprintf(buf, (size_t)n + 1, fmt, again);
  va_end(again);
  return buf;
}

static char *format(const char *fmt, ...) WASMFLOW_PRINTF(1, 2);
static char *format(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char *s = vformat(fmt, args);
  va_end(args);
  return s;
}

/* Take ownership of the malloc'd NUL-terminated `text` as `out`. */
static void own(action_string_t *out, char *text) {
  out->ptr = (uint8_t *)text;
  out->len = text == NULL ? 0 : strlen(text);
}

void wasmflow_log(wasmflow_level level, const char *message) {
  action_string_t s;
  action_string_set(&s, message);
  wasmflow_action_log_write(level, &s);
}

void wasmflow_logf(wasmflow_level level, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char *line = vformat(fmt, args);
  va_end(args);
  wasmflow_log(level, line != NULL ? line : fmt);
  free(line);
}

void wasmflow_progress(uint64_t done, uint64_t total, const char *message) {
  action_string_t s;
  action_string_set(&s, message != NULL ? message : "");
  wasmflow_action_log_progress(done, total, &s);
}

void wasmflow_string(action_string_t *out, const char *text) { action_string_dup(out, text); }

void wasmflow_stringf(action_string_t *out, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  own(out, vformat(fmt, args));
  va_end(args);
}

static char *copy_n(const uint8_t *bytes, size_t len) {
  char *s = (char *)malloc(len + 1);
  if (s == NULL) return NULL;
  if (len > 0) memcpy(s, bytes, len);
  s[len] = '\0';
  return s;
}

char *wasmflow_cstring(const action_string_t *s) { return copy_n(s->ptr, s->len); }

char *wasmflow_text(const action_list_u8_t *bytes) { return copy_n(bytes->ptr, bytes->len); }

bool wasmflow_string_is(const action_string_t *s, const char *text) {
  size_t n = strlen(text);
  return s->len == n && (n == 0 || memcmp(s->ptr, text, n) == 0);
}

/* The length of the valid UTF-8 sequence at p[0..n), or 0 if it is not one. */
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

void wasmflow_lossy(action_string_t *out, const uint8_t *p, size_t n) {
  uint8_t *buf = malloc(n * 3 + 1);
  if (buf == NULL) abort();
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t len = utf8_len(p + i, n - i);
    if (len == 0) {
      memcpy(buf + o, "\xef\xbf\xbd", 3);
      o += 3;
      i += 1;
    } else {
      memcpy(buf + o, p + i, len);
      o += len;
      i += len;
    }
  }
  out->ptr = buf;
  out->len = o;
}

void *wasmflow_grow_(void *ptr, size_t size, size_t count) {
  void *grown = realloc(ptr, size * count);
  if (grown == NULL) abort(); /* the canonical ABI has no way to say "no memory" */
  return grown;
}

bool wasmflow_fail_details(action_error_t *err, const char *code, const char *message,
                           bool retryable, const char *details_json) {
  action_string_dup(&err->code, code);
  action_string_dup(&err->message, message);
  err->retryable = retryable;
  err->details.is_some = details_json != NULL;
  if (details_json != NULL) action_string_dup(&err->details.val, details_json);
  return false;
}

bool wasmflow_fail(action_error_t *err, const char *code, const char *message, bool retryable) {
  return wasmflow_fail_details(err, code, message, retryable, NULL);
}

bool wasmflow_failf(action_error_t *err, const char *code, bool retryable, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char *message = vformat(fmt, args);
  va_end(args);
  wasmflow_fail(err, code, message != NULL ? message : fmt, retryable);
  free(message);
  return false;
}

/* ---- programs ---- */

/* `text` as a JSON string (quoted, escaped) appended to `out` at `*at`;
 * `out` is grown as needed. */
static void json_string(char **out, size_t *at, size_t *cap, const char *text) {
  size_t need = *at + 2 + 6 * strlen(text) + 1;
  if (need > *cap) {
    *cap = need * 2;
    *out = (char *)wasmflow_grow_(*out, 1, *cap);
  }
  char *p = *out + *at;
  *p++ = '"';
  for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
    if (*c == '"' || *c == '\\') {
      *p++ = '\\';
      *p++ = (char)*c;
    } else if (*c < 0x20) {
      p += sprintf(p, "\\u%04x", *c);
    } else {
      *p++ = (char)*c;
    }
  }
  *p++ = '"';
  *p = '\0';
  *at = (size_t)(p - *out);
}

/* `{"args":[...]}`, as the other SDKs put in a `PROGRAM-exit` error. */
static char *args_details(size_t argc, const char *const *argv) {
  size_t cap = 64, at = 0;
  char *out = (char *)wasmflow_grow_(NULL, 1, cap);
  at = (size_t)sprintf(out, "{\"args\":[");
  for (size_t i = 0; i < argc; i++) {
    if (i > 0) {
      out = (char *)wasmflow_grow_(out, 1, cap = cap + 1);
      out[at++] = ',';
    }
    json_string(&out, &at, &cap, argv[i]);
  }
  out = (char *)wasmflow_grow_(out, 1, at + 3);
  strcpy(out + at, "]}");
  return out;
}

static const char *reason_kind(uint8_t tag) {
  switch (tag) {
    case WASMFLOW_ACTION_PROCESS_PROCESS_ERROR_DENIED:
      return "denied";
    case WASMFLOW_ACTION_PROCESS_PROCESS_ERROR_NOT_FOUND:
      return "not-found";
    default:
      return "failed";
  }
}

bool wasmflow_run_argv(action_error_t *err, wasmflow_output *out, const char *program,
                       size_t argc, const char *const *argv, const uint8_t *stdin_bytes,
                       size_t stdin_len, bool check) {
  action_string_t name;
  action_string_set(&name, program);
  action_list_string_t args;
  args.len = argc;
  args.ptr = (action_string_t *)wasmflow_grow_(NULL, sizeof(action_string_t), argc ? argc : 1);
  for (size_t i = 0; i < argc; i++) action_string_set(&args.ptr[i], argv[i]);
  action_list_u8_t input = {(uint8_t *)stdin_bytes, stdin_len};
  wasmflow_action_process_process_error_t reason;
  bool ran = wasmflow_action_process_run(&name, &args, stdin_bytes != NULL ? &input : NULL, out,
                                         &reason);
  free(args.ptr); /* the strings in it are the caller's */
  if (!ran) {
    memset(out, 0, sizeof *out);
    char *why = wasmflow_cstring(&reason.val.denied); /* every case is a string */
    const char *kind = reason_kind(reason.tag);
    char code[256];
    snprintf(code, sizeof code, "%s-%s", program, kind);
    wasmflow_failf(err, code, reason.tag == WASMFLOW_ACTION_PROCESS_PROCESS_ERROR_FAILED,
                   "cannot run %s: %s", program, why != NULL ? why : "");
    free(why);
    wasmflow_action_process_process_error_free(&reason);
    return false;
  }
  if (check && out->status != 0) {
    char *stderr_text = wasmflow_text(&out->stderr_);
    /* Trimmed, as the other SDKs do. */
    size_t n = stderr_text != NULL ? strlen(stderr_text) : 0;
    while (n > 0 && (stderr_text[n - 1] == '\n' || stderr_text[n - 1] == ' ' ||
                     stderr_text[n - 1] == '\r' || stderr_text[n - 1] == '\t'))
      stderr_text[--n] = '\0';
    const char *start = stderr_text != NULL ? stderr_text : "";
    while (*start == ' ' || *start == '\n' || *start == '\t' || *start == '\r') start++;
    char code[256];
    snprintf(code, sizeof code, "%s-exit", program);
    char *details = args_details(argc, argv);
    char *message = format("%s exited with status %d: %s", program, (int)out->status, start);
    wasmflow_fail_details(err, code, message != NULL ? message : program, false, details);
    free(message);
    free(details);
    free(stderr_text);
    wasmflow_output_free(out);
    memset(out, 0, sizeof *out);
    return false;
  }
  return true;
}

bool wasmflow_run(action_error_t *err, wasmflow_output *out, const char *program, ...) {
  size_t argc = 0, cap = 8;
  const char **argv = (const char **)wasmflow_grow_(NULL, sizeof(char *), cap);
  va_list args;
  va_start(args, program);
  for (const char *a = va_arg(args, const char *); a != NULL; a = va_arg(args, const char *)) {
    if (argc == cap) argv = (const char **)wasmflow_grow_(argv, sizeof(char *), cap *= 2);
    argv[argc++] = a;
  }
  va_end(args);
  bool ok = wasmflow_run_argv(err, out, program, argc, argv, NULL, 0, true);
  free(argv);
  return ok;
}

// Field by field: wit-bindgen's C generator leaves out the output's own
// free function in some worlds (one that imports wasi:http, say).
void wasmflow_output_free(wasmflow_output *out) {
  action_list_u8_free(&out->stdout_);
  action_list_u8_free(&out->stderr_);
}
