// core.http: one request through wasi:http's outgoing handler, which
// wasmflow grants per host (`--allow-net`), records and replays.
#include "wasmflow.h"

#include <string.h>

static const char *error_name(const wasi_http_types_error_code_t *e) {
  switch (e->tag) {
  case WASI_HTTP_TYPES_ERROR_CODE_DNS_TIMEOUT: return "DNS timeout";
  case WASI_HTTP_TYPES_ERROR_CODE_DNS_ERROR: return "DNS error";
  case WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_NOT_FOUND: return "destination not found";
  case WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_UNAVAILABLE: return "destination unavailable";
  case WASI_HTTP_TYPES_ERROR_CODE_DESTINATION_IP_PROHIBITED: return "destination IP prohibited";
  case WASI_HTTP_TYPES_ERROR_CODE_CONNECTION_REFUSED: return "connection refused";
  case WASI_HTTP_TYPES_ERROR_CODE_CONNECTION_TERMINATED: return "connection terminated";
  case WASI_HTTP_TYPES_ERROR_CODE_CONNECTION_TIMEOUT: return "connection timeout";
  case WASI_HTTP_TYPES_ERROR_CODE_TLS_PROTOCOL_ERROR: return "TLS protocol error";
  case WASI_HTTP_TYPES_ERROR_CODE_TLS_CERTIFICATE_ERROR: return "TLS certificate error";
  case WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED: return "request denied (not granted: --allow-net)";
  case WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_URI_INVALID: return "invalid URL";
  case WASI_HTTP_TYPES_ERROR_CODE_HTTP_RESPONSE_TIMEOUT: return "response timeout";
  case WASI_HTTP_TYPES_ERROR_CODE_HTTP_PROTOCOL_ERROR: return "HTTP protocol error";
  default: return "the request failed";
  }
}

static bool http_failed(action_error_t *err, const wasi_http_types_error_code_t *e) {
  bool retryable = e->tag != WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED &&
                   e->tag != WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_URI_INVALID;
  return wasmflow_failf(err, "http-error", retryable, "%s (wasi:http error %d)", error_name(e),
                        (int)e->tag);
}

// A `method` as wasi:http names it.
static wasi_http_types_method_t method_of(const char *m) {
  static const char *known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  wasi_http_types_method_t out = {0};
  for (uint8_t i = 0; i < sizeof known / sizeof *known; i++) {
    if (strcmp(m, known[i]) == 0) {
      out.tag = i;
      return out;
    }
  }
  out.tag = WASI_HTTP_TYPES_METHOD_OTHER;
  wasmflow_string(&out.val.other, m);
  return out;
}


bool exports_action_run(action_string_t *url, action_string_t *maybe_method,
                        action_list_tuple2_string_string_t *maybe_headers,
                        action_string_t *maybe_body, double *maybe_timeout,
                        action_response_t *ret, action_error_t *err) {
  bool ok = false;
  char *u = wasmflow_cstring(url);
  char *method = maybe_method ? wasmflow_cstring(maybe_method) : NULL;
  wasi_http_types_own_outgoing_request_t request = {0};
  bool have_request = false;
  action_string_t path_query = {0};
  bool path_owned = false;

  // scheme://authority/path?query
  wasi_http_types_scheme_t scheme = {0};
  const char *rest;
  if (strncmp(u, "http://", 7) == 0) {
    scheme.tag = WASI_HTTP_TYPES_SCHEME_HTTP;
    rest = u + 7;
  } else if (strncmp(u, "https://", 8) == 0) {
    scheme.tag = WASI_HTTP_TYPES_SCHEME_HTTPS;
    rest = u + 8;
  } else {
    ok = wasmflow_failf(err, "invalid-input", false, "url %s: expected http:// or https://", u);
    goto done;
  }
  size_t alen = strcspn(rest, "/?#");
  if (alen == 0) {
    ok = wasmflow_failf(err, "invalid-input", false, "url %s has no host", u);
    goto done;
  }
  action_string_t authority = {(uint8_t *)rest, alen};
  const char *path = rest + alen;
  size_t plen = strcspn(path, "#");
  path_owned = plen == 0 || path[0] != '/';
  if (path_owned) {
    char *p = malloc(plen + 2);
    p[0] = '/';
    memcpy(p + 1, path, plen);
    p[plen + 1] = 0;
    wasmflow_string(&path_query, p);
    free(p);
  } else {
    path_query.ptr = (uint8_t *)path;
    path_query.len = plen;
  }

  wasi_http_types_own_fields_t fields = wasi_http_types_constructor_fields();
  if (maybe_headers) {
    for (size_t i = 0; i < maybe_headers->len; i++) {
      // Not copied: the host reads it during the call.
      wasi_http_types_field_value_t value = {maybe_headers->ptr[i].f1.ptr,
                                             maybe_headers->ptr[i].f1.len};
      wasi_http_types_header_error_t herr;
      if (!wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(fields),
                                                &maybe_headers->ptr[i].f0, &value, &herr)) {
        char *name = wasmflow_cstring(&maybe_headers->ptr[i].f0);
        ok = wasmflow_failf(err, "invalid-input", false, "header %s: not a valid header", name);
        free(name);
        wasi_http_types_fields_drop_own(fields);
        goto done;
      }
    }
  }
  request = wasi_http_types_constructor_outgoing_request(fields);
  have_request = true;
  wasi_http_types_borrow_outgoing_request_t req = wasi_http_types_borrow_outgoing_request(request);
  wasi_http_types_method_t m = method_of(method ? method : "GET");
  if (!wasi_http_types_method_outgoing_request_set_method(req, &m) ||
      !wasi_http_types_method_outgoing_request_set_scheme(req, &scheme) ||
      !wasi_http_types_method_outgoing_request_set_authority(req, &authority) ||
      !wasi_http_types_method_outgoing_request_set_path_with_query(req, &path_query)) {
    ok = wasmflow_failf(err, "invalid-input", false, "%s %s: not a valid request", method ? method : "GET", u);
    goto done;
  }

  // The body, written whole before the request goes (at most 4096 bytes a
  // write, as wasi:io's blocking write allows).
  wasi_http_types_own_outgoing_body_t out_body;
  if (!wasi_http_types_method_outgoing_request_body(req, &out_body)) {
    ok = wasmflow_fail(err, "http-error", "the request's body was already taken", false);
    goto done;
  }
  if (maybe_body && maybe_body->len > 0) {
    wasi_http_types_own_output_stream_t stream;
    wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(out_body), &stream);
    for (size_t at = 0; at < maybe_body->len; at += 4096) {
      size_t n = maybe_body->len - at < 4096 ? maybe_body->len - at : 4096;
      action_list_u8_t chunk = {maybe_body->ptr + at, n};
      wasi_io_streams_stream_error_t serr;
      if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(
              wasi_io_streams_borrow_output_stream(stream), &chunk, &serr)) {
        wasi_io_streams_output_stream_drop_own(stream);
        wasi_http_types_outgoing_body_drop_own(out_body);
        ok = wasmflow_fail(err, "http-error", "writing the request body failed", true);
        goto done;
      }
    }
    wasi_io_streams_output_stream_drop_own(stream);
  }

  wasi_http_types_own_request_options_t options = wasi_http_types_constructor_request_options();
  wasi_http_types_duration_t wait =
      (wasi_http_types_duration_t)((maybe_timeout ? *maybe_timeout : 60.0) * 1e9);
  wasi_http_types_method_request_options_set_connect_timeout(
      wasi_http_types_borrow_request_options(options), &wait);
  wasi_http_types_method_request_options_set_first_byte_timeout(
      wasi_http_types_borrow_request_options(options), &wait);

  wasi_http_outgoing_handler_own_future_incoming_response_t future;
  wasi_http_types_error_code_t code;
  have_request = false; // handed over
  if (!wasi_http_outgoing_handler_handle(request, &options, &future, &code)) {
    wasi_http_types_outgoing_body_drop_own(out_body);
    ok = http_failed(err, &code);
    goto done;
  }
  wasi_http_types_error_code_t finish_err;
  if (!wasi_http_types_static_outgoing_body_finish(out_body, NULL, &finish_err)) {
    wasi_http_types_future_incoming_response_drop_own(future);
    ok = http_failed(err, &finish_err);
    goto done;
  }

  wasi_http_types_borrow_future_incoming_response_t f =
      wasi_http_types_borrow_future_incoming_response(future);
  wasi_http_types_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(f);
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
  wasi_io_poll_pollable_drop_own(ready);
  wasi_http_types_result_result_own_incoming_response_error_code_void_t got;
  bool some = wasi_http_types_method_future_incoming_response_get(f, &got);
  wasi_http_types_future_incoming_response_drop_own(future);
  if (!some || got.is_err) {
    ok = wasmflow_fail(err, "http-error", "no response", true);
    goto done;
  }
  if (got.val.ok.is_err) {
    ok = http_failed(err, &got.val.ok.val.err);
    goto done;
  }
  wasi_http_types_own_incoming_response_t response = got.val.ok.val.ok;
  wasi_http_types_borrow_incoming_response_t r = wasi_http_types_borrow_incoming_response(response);
  ret->status = wasi_http_types_method_incoming_response_status(r);

  wasi_http_types_own_headers_t headers = wasi_http_types_method_incoming_response_headers(r);
  wasi_http_types_list_tuple2_field_name_field_value_t entries;
  wasi_http_types_method_fields_entries(wasi_http_types_borrow_fields(headers), &entries);
  wasmflow_list_alloc(&ret->headers, entries.len);
  for (size_t i = 0; i < entries.len; i++) {
    wasmflow_lossy(&ret->headers.ptr[i].f0, entries.ptr[i].f0.ptr, entries.ptr[i].f0.len);
    wasmflow_lossy(&ret->headers.ptr[i].f1, entries.ptr[i].f1.ptr, entries.ptr[i].f1.len);
  }
  wasi_http_types_list_tuple2_field_name_field_value_free(&entries);
  wasi_http_types_fields_drop_own(headers);

  // The body, read to its end.
  uint8_t *body = NULL;
  size_t len = 0;
  wasi_http_types_own_incoming_body_t in_body;
  if (wasi_http_types_method_incoming_response_consume(r, &in_body)) {
    wasi_http_types_own_input_stream_t stream;
    if (wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(in_body), &stream)) {
      for (;;) {
        action_list_u8_t chunk;
        wasi_io_streams_stream_error_t serr;
        if (!wasi_io_streams_method_input_stream_blocking_read(
                wasi_io_streams_borrow_input_stream(stream), 65536, &chunk, &serr)) {
          if (serr.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED)
            wasi_io_error_error_drop_own(serr.val.last_operation_failed);
          break;
        }
        body = realloc(body, len + chunk.len + 1);
        memcpy(body + len, chunk.ptr, chunk.len);
        len += chunk.len;
        action_list_u8_free(&chunk);
      }
      wasi_io_streams_input_stream_drop_own(stream);
    }
    wasi_http_types_incoming_body_drop_own(in_body);
  }
  wasi_http_types_incoming_response_drop_own(response);
  wasmflow_lossy(&ret->body, body ? body : (const uint8_t *)"", len);
  free(body);
  ok = true;

done:
  if (path_owned) action_string_free(&path_query);
  if (have_request) wasi_http_types_outgoing_request_drop_own(request);
  free(u);
  free(method);
  action_string_free(url);
  if (maybe_method) action_string_free(maybe_method);
  if (maybe_headers) action_list_tuple2_string_string_free(maybe_headers);
  if (maybe_body) action_string_free(maybe_body);
  return ok;
}
