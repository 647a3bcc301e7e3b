/* wasmflow's C SDK: helpers over the `wasmflow:action` imports, for
 * actions written in C, C++ or Zig (through `@cImport`).
 *
 * `wasmflow build` generates the world's bindings as `action.h` (under
 * `target/wasmflow/bindings/`, whatever the world is called) and compiles
 * every `.c` file beside the action's source, this SDK's `wasmflow.c`
 * among them. `wasmflow new --lang c|cpp|zig NAME` puts both files beside
 * the source.
 *
 *     #include "wasmflow.h"
 *
 *     bool exports_action_run(action_spec_t *spec, action_report_t *ret,
 *                             action_error_t *err) {
 *         if (spec->cpus == 0)
 *             return wasmflow_fail(err, "invalid-spec", "cpus must be at least 1", false);
 *         wasmflow_info("cloning %s", "template");
 *         wasmflow_output out;
 *         if (!wasmflow_run(err, &out, "qemu-img", "info", "disk.qcow2", NULL))
 *             return false;            // err says why: not granted, exit status, ...
 *         ...
 *     }
 *
 * Memory: what an action returns (`ret`, or `err`) is freed by the bindings
 * after the host has read it, with `free`, so every string and list in it
 * must be allocated with `malloc` (the helpers here do). The arguments
 * belong to the action: free them with the generated `action_*_free`, or
 * move them into `ret`.
 */
#ifndef WASMFLOW_H
#define WASMFLOW_H

#include "action.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define WASMFLOW_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define WASMFLOW_PRINTF(fmt, args)
#endif

/* ---- log lines and progress (into the execution record) ---- */

typedef wasmflow_action_log_level_t wasmflow_level;
#define WASMFLOW_TRACE WASMFLOW_ACTION_LOG_LEVEL_TRACE
#define WASMFLOW_DEBUG WASMFLOW_ACTION_LOG_LEVEL_DEBUG
#define WASMFLOW_INFO WASMFLOW_ACTION_LOG_LEVEL_INFO
#define WASMFLOW_WARN WASMFLOW_ACTION_LOG_LEVEL_WARN
#define WASMFLOW_ERROR WASMFLOW_ACTION_LOG_LEVEL_ERROR

/* One log line, as it is. */
void wasmflow_log(wasmflow_level level, const char *message);
/* One log line, formatted like printf. */
void wasmflow_logf(wasmflow_level level, const char *fmt, ...) WASMFLOW_PRINTF(2, 3);
#define wasmflow_debug(...) wasmflow_logf(WASMFLOW_DEBUG, __VA_ARGS__)
#define wasmflow_info(...) wasmflow_logf(WASMFLOW_INFO, __VA_ARGS__)
#define wasmflow_warn(...) wasmflow_logf(WASMFLOW_WARN, __VA_ARGS__)
#define wasmflow_error(...) wasmflow_logf(WASMFLOW_ERROR, __VA_ARGS__)

/* Progress: `done` of `total` units, with a short message. */
void wasmflow_progress(uint64_t done, uint64_t total, const char *message);

/* ---- strings ---- */

/* `out` becomes a malloc'd copy of the NUL-terminated `text`. */
void wasmflow_string(action_string_t *out, const char *text);
/* `out` becomes a malloc'd string formatted like printf. */
void wasmflow_stringf(action_string_t *out, const char *fmt, ...) WASMFLOW_PRINTF(2, 3);
/* A malloc'd NUL-terminated copy of `s` (free it), or NULL if out of
 * memory. WIT strings are not NUL-terminated. */
char *wasmflow_cstring(const action_string_t *s);
/* The same for bytes, e.g. a program's stdout. */
char *wasmflow_text(const action_list_u8_t *bytes);
/* Whether `s` is exactly `text`. */
bool wasmflow_string_is(const action_string_t *s, const char *text);
/* `out` becomes a malloc'd copy of the `n` bytes at `p` as UTF-8, each
 * byte that is not part of a valid sequence replaced by U+FFFD: a WIT
 * string must be valid UTF-8, and a program's output or an HTTP body need
 * not be. */
void wasmflow_lossy(action_string_t *out, const uint8_t *p, size_t n);

/* ---- lists (any generated `action_list_*_t`) ---- */

/* Allocate `n` zeroed elements. */
#define wasmflow_list_alloc(list, n)                                         \
  ((list)->len = (n),                                                        \
   (list)->ptr = WASMFLOW_CAST_(list, calloc((n) ? (n) : 1, sizeof *(list)->ptr)))
/* Append `value` (grows the list by one element). */
#define wasmflow_list_push(list, value)                                       \
  ((list)->ptr = WASMFLOW_CAST_(list, wasmflow_grow_((list)->ptr,            \
                                                     sizeof *(list)->ptr,     \
                                                     (list)->len + 1)),       \
   (list)->ptr[(list)->len++] = (value))
#ifdef __cplusplus
#define WASMFLOW_CAST_(list, p) static_cast<decltype((list)->ptr)>(p)
#else
#define WASMFLOW_CAST_(list, p) (p)
#endif
void *wasmflow_grow_(void *ptr, size_t size, size_t count);

/* ---- failing: the `err` case of `result<T, error>` ---- */

/* Fill `err` and return false, so that `return wasmflow_fail(...)` ends the
 * action with it. `code` is short and stable (`invalid-spec`); `message`
 * is a sentence for the operator; `retryable` says whether running the
 * same input again may succeed. */
bool wasmflow_fail(action_error_t *err, const char *code, const char *message, bool retryable);
/* The same with a printf-formatted message. */
bool wasmflow_failf(action_error_t *err, const char *code, bool retryable, const char *fmt, ...)
    WASMFLOW_PRINTF(4, 5);
/* The same with structured details, as JSON text (`{"field":"cpus"}`). */
bool wasmflow_fail_details(action_error_t *err, const char *code, const char *message,
                           bool retryable, const char *details_json);

/* ---- running a granted host program (capability `exec`) ---- */

typedef wasmflow_action_process_output_t wasmflow_output;

/* Run `program` with the arguments that follow, up to a NULL, and wait for
 * it. On success `out` holds its status, stdout and stderr (free it with
 * `wasmflow_output_free`). On failure `err` is filled as in the other
 * SDKs and false returned: `PROGRAM-denied` (not granted),
 * `PROGRAM-not-found`, `PROGRAM-failed` (could not start; retryable), and
 * `PROGRAM-exit` for a non-zero exit status, with its stderr. */
bool wasmflow_run(action_error_t *err, wasmflow_output *out, const char *program, ...);
/* The same with `argc` arguments in `argv`, `stdin_len` bytes of stdin
 * (none when `stdin_bytes` is NULL), and, when `check` is false, a
 * non-zero exit status returned in `out` rather than failed. */
bool wasmflow_run_argv(action_error_t *err, wasmflow_output *out, const char *program,
                       size_t argc, const char *const *argv, const uint8_t *stdin_bytes,
                       size_t stdin_len, bool check);
void wasmflow_output_free(wasmflow_output *out);

#ifdef __cplusplus
}
#endif

#endif /* WASMFLOW_H */
