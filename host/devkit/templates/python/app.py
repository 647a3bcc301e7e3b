"""{{name}}: the action's source. `wasmflow build` turns it into {{name}}.wasm."""

import wit_world
from wit_world import Greeting, Request

import wasmflow_action as wf


class WitWorld(wit_world.WitWorld):
    def run(self, request: Request) -> Greeting:
        if not request.name:
            raise wf.fail("invalid-input", "name must not be empty", field="name")
        wf.info(f"greeting {request.name}")
        message = f"Hello, {request.name}{'!' if request.excited else '.'}"
        return Greeting(message, len(message))
