// core.uuid: 16 random bytes (WASI's random, which wasmflow records),
// stamped as an RFC 9562 version 4, variant 10 UUID.
#include "wasmflow.h"

#include <unistd.h>

bool exports_action_run(action_string_t *ret, action_error_t *err) {
  uint8_t b[16];
  if (getentropy(b, sizeof b) != 0)
    return wasmflow_fail(err, "no-randomness", "the host gave no random bytes", true);
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  wasmflow_stringf(ret,
                   "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                   b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                   b[12], b[13], b[14], b[15]);
  return true;
}
