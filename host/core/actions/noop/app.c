// core.noop: succeeds at once.
#include "wasmflow.h"

bool exports_action_run(action_error_t *err) {
  (void)err;
  return true;
}
