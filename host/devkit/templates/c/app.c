// {{name}}: the action's source. `wasmflow build` turns it into {{name}}.wasm.
//
// `wasmflow build` generates the world's bindings as action.h (in
// target/wasmflow/bindings/): each WIT record is an `action_NAME_t`, and the
// world's `run` is the function below. wasmflow.h is the SDK.
#include "wasmflow.h"

bool exports_action_run(action_request_t *request, action_greeting_t *ret, action_error_t *err) {
  if (request->name.len == 0) {
    action_request_free(request);
    return wasmflow_fail_details(err, "invalid-input", "name must not be empty", false,
                                 "{\"field\":\"name\"}");
  }
  char *name = wasmflow_cstring(&request->name);
  wasmflow_info("greeting %s", name);
  wasmflow_stringf(&ret->message, "Hello, %s%s", name, request->excited ? "!" : ".");
  ret->length = (uint32_t)ret->message.len;
  free(name);
  // The arguments are the action's to free; what it returns is freed by
  // the bindings once the host has read it.
  action_request_free(request);
  return true;
}
