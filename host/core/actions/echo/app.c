// core.echo: the message, logged and given back.
#include "wasmflow.h"

#include <string.h>

bool exports_action_run(action_string_t *message, action_string_t *ret, action_error_t *err) {
  (void)err;
  wasmflow_log(WASMFLOW_INFO, "echo");
  // The argument is ours: moved into the result, freed with it.
  *ret = *message;
  memset(message, 0, sizeof *message);
  return true;
}
