// core.local: `sh -c CMD` through the process interface (`--allow-exec sh`).
#include "wasmflow.h"

#include <string.h>

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
  wasmflow_lossy(&ret->stdout_, out.stdout_.ptr, out.stdout_.len);
  wasmflow_lossy(&ret->stderr_, out.stderr_.ptr, out.stderr_.len);
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
