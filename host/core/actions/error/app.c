// core.error: fails with the message it is given.
#include "wasmflow.h"

#include <string.h>

bool exports_action_run(action_string_t *message, action_error_t *err) {
  wasmflow_string(&err->code, "error");
  err->message = *message;
  memset(message, 0, sizeof *message);
  err->retryable = false;
  err->details.is_some = false;
  return false;
}
