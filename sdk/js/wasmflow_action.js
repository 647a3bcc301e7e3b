// wasmflow's JavaScript SDK: helpers over the `wasmflow:action` imports.
//
// Every wasmflow world includes `wasmflow:action/imports`, so any action
// componentize-js builds can import these interfaces. The helpers make the
// common things short and hard to get wrong:
//
//   import * as wf from "./wasmflow_action.js";
//   wf.info(`cloning ${spec.source}`);
//   const out = wf.run("qemu-img", ["info", spec.source]); // throws an action error on failure
//   wf.fail("invalid-spec", "cpus must be at least 1", { details: { field: "cpus" } });
//
// `wasmflow new --lang js NAME` puts this file beside `app.js`.
import { write, progress as report } from "wasmflow:action/log@0.1.0";
import { run as runProgram } from "wasmflow:action/process@0.1.0";

export const debug = (message) => write("debug", message);
export const info = (message) => write("info", message);
export const warn = (message) => write("warn", message);
export const error = (message) => write("error", message);

/** Report progress: `done` of `total` units. */
export function progress(done, total, message = "") {
  report(BigInt(done), BigInt(total), message);
}

/** Throw the action's `err` case: a stable code, a sentence for the operator,
 *  whether a retry may help, and structured details (sent as JSON). */
export function fail(code, message, { retryable = false, details } = {}) {
  throw { code, message, retryable, details: details === undefined ? undefined : JSON.stringify(details) };
}

const decoder = new TextDecoder();

/** Run a granted host program (`--allow-exec PROGRAM`) and wait for it.
 *  Returns { status, stdout, stderr } with the output as text. A program
 *  that is not granted, not installed, or cannot start throws
 *  fail("PROGRAM-denied" | "-not-found" | "-failed"); with `check` (the
 *  default), a non-zero exit throws fail("PROGRAM-exit") with its stderr. */
export function run(program, args, { stdin, check = true } = {}) {
  let out;
  try {
    out = runProgram(program, args, stdin === undefined ? undefined : new TextEncoder().encode(stdin));
  } catch (e) {
    const reason = e && e.payload ? e.payload : { tag: "failed", val: String(e) };
    fail(`${program}-${reason.tag}`, `cannot run ${program}: ${reason.val}`, { retryable: reason.tag === "failed" });
  }
  const result = { status: out.status, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
  if (check && result.status !== 0) {
    fail(`${program}-exit`, `${program} exited with status ${result.status}: ${result.stderr.trim()}`, { details: { args } });
  }
  return result;
}
