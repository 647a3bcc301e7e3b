// {{name}}: the action's source. `wasmflow build` turns it into {{name}}.wasm.
//
// `wasmflow build` generates the world's bindings as action.h (in
// target/wasmflow/bindings/): each WIT record is an `action_NAME_t`, and the
// world's `run` is the function below. wasmflow.h is the SDK (a C API).
// wasm32-wasi has no exceptions: report failures with wasmflow_fail.
#include <string>

#include "wasmflow.h"

static std::string text(const action_string_t &s) {
  return std::string(reinterpret_cast<const char *>(s.ptr), s.len);
}

extern "C" bool exports_action_run(action_request_t *request, action_greeting_t *ret,
                                   action_error_t *err) {
  // The arguments are the action's to free; what it returns is freed by
  // the bindings once the host has read it.
  const std::string name = text(request->name);
  const bool excited = request->excited;
  action_request_free(request);
  if (name.empty()) {
    return wasmflow_fail_details(err, "invalid-input", "name must not be empty", false,
                                 "{\"field\":\"name\"}");
  }
  wasmflow_info("greeting %s", name.c_str());
  const std::string message = "Hello, " + name + (excited ? "!" : ".");
  wasmflow_string(&ret->message, message.c_str());
  ret->length = static_cast<uint32_t>(message.size());
  return true;
}
