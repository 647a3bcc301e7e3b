// {{name}}: the action's source. `wasmflow build` turns it into {{name}}.wasm.
import * as wf from "./wasmflow_action.js";

export function run(request) {
  if (!request.name) {
    wf.fail("invalid-input", "name must not be empty", { details: { field: "name" } });
  }
  wf.info(`greeting ${request.name}`);
  const message = `Hello, ${request.name}${request.excited ? "!" : "."}`;
  return { message, length: message.length };
}
