// http.check: probe an HTTP endpoint through wasi:http (fetch).
//
// The host lets the request out only to hosts granted with --allow-net;
// anything else fails inside fetch() and becomes an `http-denied` error.
import { write } from "wasmflow:action/log@0.1.0";

function fail(code, message, retryable, details) {
  const err = { code, message, retryable, details: details ? JSON.stringify(details) : undefined };
  // componentize-js maps a thrown value to the `err` case of the result.
  throw err;
}

export async function run(probe) {
  let url;
  try {
    url = new URL(probe.url);
  } catch (_) {
    fail("invalid-url", `not a URL: ${probe.url}`, false);
  }
  const method = probe.method.toUpperCase();
  write("info", `${method} ${url}`);
  let response;
  try {
    response = await fetch(url, { method });
  } catch (e) {
    fail("http-denied-or-unreachable", `${method} ${url} failed: ${e}`, true, { url: String(url) });
  }
  const body = method === "HEAD" ? "" : await response.text();
  const expected = probe.expectStatus;
  let healthy = expected.length ? expected.includes(response.status) : response.status >= 200 && response.status < 300;
  if (healthy && probe.contains !== undefined && probe.contains !== null) {
    healthy = body.includes(probe.contains);
  }
  write(healthy ? "info" : "warn", `${url} answered ${response.status} (${body.length} bytes)`);
  return {
    status: response.status,
    healthy,
    bodyBytes: BigInt(new TextEncoder().encode(body).length),
    snippet: body.slice(0, 200),
  };
}
