//! The host side of the `wasmflow:action` WIT world, generated. A leaf:
//! the host interfaces in `host/` implement these traits, the program
//! runner and the runner of executions use their types.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "wasmflow:action/imports",
    imports: {
        "wasmflow:action/process.run": async | trappable,
        default: trappable,
    },
});
