//! {{name}}: the action's source. `wasmflow build` turns it into {{name}}.wasm.
//!
//! `wasmflow build` generates the world's bindings as action.h (in
//! target/wasmflow/bindings/): each WIT record is an `action_NAME_t`, and
//! the world's `run` is the function exported below. wasmflow.h is the SDK.
const std = @import("std");
// wasmflow.h and the bindings, translated to Zig by `wasmflow build`.
const c = @import("wasmflow");

fn text(s: c.action_string_t) []const u8 {
    if (s.len == 0) return "";
    return s.ptr[0..s.len];
}

export fn exports_action_run(
    request: *c.action_request_t,
    ret: *c.action_greeting_t,
    err: *c.action_error_t,
) bool {
    // The arguments are the action's to free; what it returns is freed by
    // the bindings (with libc's free) once the host has read it.
    defer c.action_request_free(request);
    const name = text(request.name);
    if (name.len == 0) {
        return c.wasmflow_fail_details(err, "invalid-input", "name must not be empty", false, "{\"field\":\"name\"}");
    }
    const alloc = std.heap.c_allocator;
    const line = std.fmt.allocPrintSentinel(alloc, "greeting {s}", .{name}, 0) catch
        return c.wasmflow_fail(err, "out-of-memory", "no memory for the log line", true);
    defer alloc.free(line);
    c.wasmflow_log(c.WASMFLOW_INFO, line.ptr);
    const message = std.fmt.allocPrintSentinel(alloc, "Hello, {s}{s}", .{ name, if (request.excited) "!" else "." }, 0) catch
        return c.wasmflow_fail(err, "out-of-memory", "no memory for the greeting", true);
    // Allocated with libc's allocator: the bindings free it after the host has read it.
    ret.message = .{ .ptr = message.ptr, .len = message.len };
    ret.length = @intCast(message.len);
    return true;
}
