// core.pause: sleeps on WASI's monotonic clock.
#include "wasmflow.h"

#include <time.h>

bool exports_action_run(double seconds, action_error_t *err) {
  if (!(seconds >= 0 && seconds <= 86400))
    return wasmflow_failf(err, "invalid-input", false,
                          "max_pause must be between 0 and 86400 seconds, not %g", seconds);
  struct timespec t = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&t, &t) != 0) {
  }
  return true;
}
