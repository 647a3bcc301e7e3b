// wasmflow web UI: executions, one execution (input, output, logs, task
// tree, re-run form), actions, queue. Plain DOM, no build step, no CDN.
"use strict";

const main = document.getElementById("main");
const TOKEN_KEY = "wasmflow.token";
let stopPage = () => {};

function token() { return localStorage.getItem(TOKEN_KEY); }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// replaceChildren with el()'s rules: nested arrays flattened, null skipped.
function fill(parent, ...children) {
  parent.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.classList.add("show");
  setTimeout(() => t.classList.remove("show"), 2500);
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Why the sign-in form is shown again, if a call was refused its token.
let signInReason = "";
const REFUSED = "This token is not accepted here (mistyped, or revoked): paste one that " +
  "`wasmflow token create` printed.";

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(`/api/v1${path}`, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    if (resp.status === 401) {
      localStorage.removeItem(TOKEN_KEY);
      signInReason = REFUSED;
      // Signing in shows it where it is typed; elsewhere, back to the form.
      if (!options.signingIn) route();
    }
    throw new ApiError(resp.status, (data && data.error) || `${resp.status}`);
  }
  return data;
}

// Server-sent events over fetch (EventSource cannot send a bearer token).
async function follow(id, onEvent, signal) {
  const resp = await fetch(`/api/v1/executions/${id}/logs`, {
    headers: { Authorization: `Bearer ${token()}` }, signal,
  });
  if (!resp.ok) return;
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      }
      if (!data) continue;
      onEvent(event, JSON.parse(data));
      if (event === "end") return;
    }
  }
}

function statusBadge(s) { return el("span", { class: `status status-${s}` }, s); }
function when(t) { return t ? new Date(t).toLocaleString() : "–"; }
function took(r) {
  if (!r.started_at || !r.ended_at) return "–";
  const ms = new Date(r.ended_at) - new Date(r.started_at);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
function nameOf(r) { return r.name || r.action; }
function pretty(v) { return v === undefined || v === null ? "–" : JSON.stringify(v, null, 2); }

function setNav(current) {
  for (const id of ["executions", "actions", "queue"]) {
    const a = document.getElementById(`nav-${id}`);
    if (id === current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

function show(...nodes) {
  fill(main, ...nodes);
}

// ---- sign in ---------------------------------------------------------------

function signIn() {
  setNav(null);
  const input = el("input", { type: "password", id: "token", autocomplete: "off", required: true });
  const form = el("form", { id: "login", onsubmit: async (e) => {
      e.preventDefault();
      localStorage.setItem(TOKEN_KEY, input.value.trim());
      try { await api("/queue", { signingIn: true }); signInReason = ""; route(); }
      catch (err) {
        localStorage.removeItem(TOKEN_KEY);
        msg.textContent = err.status === 401 ? REFUSED : err.message;
        input.focus();
        input.select();
      }
    } },
    el("h1", {}, "Sign in"),
    el("label", { for: "token" }, "API token ", el("span", { class: "hint" }, "(from `wasmflow token create`)")),
    input, " ",
    el("p", {}, el("button", { class: "primary", type: "submit" }, "Sign in")));
  const msg = el("p", { class: "error", role: "alert" }, signInReason);
  show(form, msg);
  input.focus();
}

// ---- executions --------------------------------------------------------------

async function executionsPage(params) {
  setNav("executions");
  const status = params.get("status") || "";
  const action = params.get("action") || "";
  // Filters live in the address, so a filtered list can be shared.
  const refilter = () => {
    const q = new URLSearchParams();
    if (select.value) q.set("status", select.value);
    if (actionSelect.value) q.set("action", actionSelect.value);
    location.hash = q.toString() ? `#/executions?${q}` : "#/executions";
  };
  const select = el("select", { id: "status-filter", onchange: refilter },
    ["", "pending", "running", "succeeded", "failed", "timed_out", "canceled"].map(
      (s) => el("option", { value: s, selected: s === status }, s || "any")));
  const names = (await api("/actions")).map((a) => a.name);
  if (action && !names.includes(action)) names.push(action);
  const actionSelect = el("select", { id: "action-filter", onchange: refilter },
    ["", ...names].map((n) => el("option", { value: n, selected: n === action }, n || "any")));
  // Narrows the rows shown, by id or action, as it is typed.
  const search = el("input", { type: "search", id: "search", placeholder: "id or action",
    oninput: () => narrow() });
  const tbody = el("tbody");
  const more = el("p");
  show(el("h1", {}, "Executions"),
    el("div", { class: "toolbar" },
      el("div", {}, el("label", { for: "status-filter" }, "Status"), select),
      el("div", {}, el("label", { for: "action-filter" }, "Action"), actionSelect),
      el("div", {}, el("label", { for: "search" }, "Search"), search)),
    el("table", { id: "executions" },
      el("thead", {}, el("tr", {}, ["Id", "Action", "Status", "Created", "Took", "Error"].map((h) => el("th", { scope: "col" }, h)))),
      tbody),
    more);
  let before = null;
  function query(extra = {}) {
    const q = new URLSearchParams({ limit: "50", ...extra });
    if (status) q.set("status", status);
    if (action) q.set("action", action);
    return q;
  }
  async function load() {
    const page = await api(`/executions?${query()}`);
    fill(tbody, ...page.executions.map(row));
    narrow();
    before = page.next_before;
    fill(more, before ? el("button", { type: "button", onclick: loadMore }, "Older") : "");
  }
  async function loadMore() {
    const page = await api(`/executions?${query({ before })}`);
    tbody.append(...page.executions.map(row));
    narrow();
    before = page.next_before;
    if (!before) fill(more);
  }
  function narrow() {
    const text = search.value.trim().toLowerCase();
    for (const tr of tbody.children) {
      tr.hidden = text !== "" && !tr.dataset.search.includes(text);
    }
  }
  function row(r) {
    const error = r.error ? `[${r.error.code}] ${r.error.message}` : "";
    return el("tr", { "data-id": r.id, "data-search": `${r.id} ${nameOf(r)}`.toLowerCase() },
      el("td", {}, el("a", { href: `#/executions/${r.id}`, class: "exec-link" }, el("code", {}, r.id))),
      el("td", {}, nameOf(r)), el("td", {}, statusBadge(r.status)),
      el("td", {}, when(r.created_at)), el("td", {}, took(r)),
      el("td", { class: "error" }, error));
  }
  await load();
  // Live: refreshed while on screen; paging stops the refresh.
  const timer = setInterval(() => { if (!document.hidden && !before) load().catch(() => {}); }, 1500);
  return () => clearInterval(timer);
}

// ---- one execution -------------------------------------------------------------

function treeList(node) {
  const label = node.task ? node.task : nameOf(node);
  return el("ul", {}, el("li", {},
    el("a", { href: `#/executions/${node.id}` }, label), " ", statusBadge(node.status),
    el("span", { class: "hint" }, ` ${took(node)}`),
    (node.children || []).length ? (node.children || []).map(treeList) : null));
}

async function executionPage(id) {
  setNav("executions");
  let r = await api(`/executions/${id}`);
  const controller = new AbortController();
  const logs = el("pre", { id: "logs", class: "logs", "aria-live": "polite" });
  const statusEl = el("span", { id: "status" }, statusBadge(r.status));
  const fields = el("dl");
  const io = el("div", { class: "grid" });
  const tree = el("section", { id: "tree", class: "tree", "aria-labelledby": "tree-h" });
  const actions = el("p");
  const rerun = el("section", { "aria-labelledby": "rerun-h" });

  function renderRecord() {
    fill(statusEl, statusBadge(r.status));
    fill(fields, 
      el("dt", {}, "Action"), el("dd", {}, nameOf(r), r.name && r.name !== r.action ? el("span", { class: "hint" }, ` (${r.action})`) : null),
      el("dt", {}, "Kind"), el("dd", {}, r.kind),
      el("dt", {}, "Created"), el("dd", {}, when(r.created_at)),
      el("dt", {}, "Took"), el("dd", {}, took(r)),
      r.rerun_of ? [el("dt", {}, "Re-run of"), el("dd", {}, el("a", { href: `#/executions/${r.rerun_of}` }, r.rerun_of))] : null,
      r.replay_of ? [el("dt", {}, "Replay of"), el("dd", {}, el("a", { href: `#/executions/${r.replay_of}` }, r.replay_of))] : null,
      r.parent ? [el("dt", {}, "Parent"), el("dd", {}, el("a", { href: `#/executions/${r.parent}` }, r.parent))] : null,
      el("dt", {}, "Grants"), el("dd", {}, el("code", {}, JSON.stringify(r.grants))));
    fill(io, 
      el("div", {}, el("h2", {}, "Input"), el("pre", { id: "input" }, pretty(r.input))),
      el("div", {}, el("h2", {}, "Result"), el("pre", { id: "result" }, pretty(r.result))),
      r.error ? el("div", {}, el("h2", {}, "Error"), el("pre", { id: "error", class: "error" }, pretty(r.error))) : null);
    const done = !["pending", "running"].includes(r.status);
    fill(actions, 
      done ? null : el("button", { type: "button", id: "cancel", onclick: async () => {
        try { await api(`/executions/${r.id}/cancel`, { method: "POST" }); toast("cancel requested"); }
        catch (e) { toast(e.message); } } }, "Cancel"),
      done && r.kind === "action" ? el("button", { type: "button", id: "replay", onclick: async () => {
        try { const rep = await api(`/executions/${r.id}/replay`, { method: "POST" }); toast(rep.verdict);
          location.hash = `#/executions/${rep.record.id}`; }
        catch (e) { toast(e.message); } } }, "Replay") : null);
    if (done) {
      const lines = (r.logs || []).map(logLine);
      fill(logs, lines.length ? lines : (r.kind === "workflow" ? "(a workflow's log lines are its tasks')" : "(no log lines)"));
    }
  }

  function logLine(l) { return `[${l.level}] ${l.message}\n`; }

  async function renderTree() {
    if (r.kind !== "workflow") { fill(tree); return; }
    const t = await api(`/executions/${r.id}?tree=true`);
    fill(tree, el("h2", { id: "tree-h" }, "Tasks"), treeList(t));
  }

  show(el("h1", {}, "Execution ", el("code", {}, r.id), " ", statusEl), fields, actions, io,
    tree, el("h2", {}, "Logs"), logs, rerun);
  renderRecord();
  await renderTree();
  await rerunForm(r, rerun);

  let timer = null;
  if (["pending", "running"].includes(r.status)) {
    if (r.kind === "workflow") timer = setInterval(() => renderTree().catch(() => {}), 1000);
    follow(r.id, (event, data) => {
      if (event === "log") logs.append(logLine(data));
      else if (event === "task") logs.append(`[task] ${data.task} ${data.event === "task_started" ? "started" : data.status}\n`);
      else if (event === "end") {
        api(`/executions/${r.id}`).then((rec) => { r = rec; renderRecord(); return renderTree(); })
          .then(() => { if (timer) clearInterval(timer); }).catch(() => {});
      }
    }, controller.signal).catch(() => {});
  }
  return () => { controller.abort(); if (timer) clearInterval(timer); };
}

// A form generated from the action's JSON Schema, filled with the recorded input.
async function rerunForm(r, section) {
  if (!r.name) {
    fill(section, el("h2", { id: "rerun-h" }, "Re-run"),
      el("p", { class: "hint" }, "Not one of this server's actions; re-run it from the CLI."));
    return;
  }
  const desc = await api(`/actions/${encodeURIComponent(r.name)}`);
  const props = (desc.input_schema && desc.input_schema.properties) || {};
  const required = new Set((desc.input_schema && desc.input_schema.required) || []);
  const inputs = [];
  const fields = Object.entries(props).map(([name, schema]) => {
    const id = `field-${name}`;
    const value = r.input ? r.input[name] : undefined;
    const type = schemaType(schema);
    let input;
    if (type === "boolean") input = el("input", { type: "checkbox", id, name, checked: value === true });
    else if (type === "integer" || type === "number")
      input = el("input", { type: "number", id, name, step: type === "integer" ? "1" : "any",
        value: value === undefined || value === null ? "" : String(value), required: required.has(name) });
    else if (type === "string")
      input = el("input", { type: "text", id, name, value: value === undefined || value === null ? "" : value, required: required.has(name) });
    else input = el("textarea", { id, name, rows: "4" }, value === undefined ? "" : JSON.stringify(value, null, 2));
    inputs.push([name, type, input, schema]);
    return el("div", {}, el("label", { for: id }, name, " ",
      el("span", { class: "hint" }, `${type}${required.has(name) ? "" : ", optional"}${schema.description ? " — " + schema.description : ""}`)), input);
  });
  const error = el("p", { class: "error", role: "alert", id: "rerun-error" });
  const form = el("form", { id: "rerun", onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const input = {};
      try {
        for (const [name, type, field] of inputs) {
          if (type === "boolean") input[name] = field.checked;
          else if (type === "integer" || type === "number") input[name] = field.value === "" ? null : Number(field.value);
          else if (type === "string") input[name] = field.value === "" && !required.has(name) ? null : field.value;
          else input[name] = field.value.trim() === "" ? null : JSON.parse(field.value);
        }
      } catch (err) { error.textContent = `not JSON: ${err.message}`; return; }
      try {
        const accepted = await api(`/executions/${r.id}/re-run`, { method: "POST", body: { input } });
        toast(`started ${accepted.id}`);
        location.hash = `#/executions/${accepted.id}`;
      } catch (err) { error.textContent = err.message; }
    } },
    fields, el("p", {}, el("button", { class: "primary", type: "submit" }, "Re-run")), error);
  fill(section, el("h2", { id: "rerun-h" }, "Re-run with edited input"), form);
}

function schemaType(s) {
  if (!s) return "json";
  if (s.anyOf) {
    const other = s.anyOf.filter((x) => x.type !== "null");
    if (other.length === 1) return schemaType(other[0]);
    return "json";
  }
  if (Array.isArray(s.type)) { const t = s.type.filter((x) => x !== "null"); return t.length === 1 ? t[0] : "json"; }
  if (["string", "integer", "number", "boolean"].includes(s.type) && !s.enum) return s.type;
  return "json";
}

// ---- actions, queue ----------------------------------------------------------------

async function actionsPage() {
  setNav("actions");
  const list = await api("/actions");
  show(el("h1", {}, "Actions"),
    list.length ? null : el("p", {}, "No actions: start the server with --actions DIR."),
    ...list.map((a) => el("section", { id: `action-${a.name}` },
      el("h2", {}, a.name, " ", el("span", { class: "hint" }, a.kind)),
      a.docs ? el("p", {}, a.docs) : null,
      el("pre", {}, a.signature))));
}

async function queuePage() {
  setNav("queue");
  const body = el("div");
  show(el("h1", {}, "Queue"), body);
  async function load() {
    const [q, workers] = await Promise.all([api("/queue"), api("/workers")]);
    const table = (rows, cols) => el("table", {},
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, c[0])))),
      el("tbody", {}, rows.map((row) => el("tr", {}, cols.map((c) => el("td", {}, c[1](row)))))));
    const link = (i) => el("a", { href: `#/executions/${i.id}` }, el("code", {}, i.id));
    fill(body, 
      el("p", {}, `${q.workers} workers, capacity ${q.capacity}.`),
      el("h2", {}, `Running (${q.running.length})`),
      table(q.running, [["Worker", (i) => i.process ? `${i.process}/${i.worker}` : i.worker], ["Id", link], ["Action", (i) => i.action], ["Running for", (i) => `${i.running_ms} ms`]]),
      el("h2", {}, `Pending (${q.pending.length})`),
      table(q.pending, [["Id", link], ["Action", (i) => i.action], ["Waiting for", (i) => `${i.waited_ms} ms`]]),
      el("h2", {}, `Workers (${workers.length})`),
      table(workers, [["Name", (w) => w.name], ["Last heartbeat", (w) => w.alive ? `${w.heartbeat_ms} ms ago` : `lost (${w.heartbeat_ms} ms ago)`],
        ["Concurrency", (w) => String(w.concurrency)], ["Running", (w) => String(w.running.length)], ["Since", (w) => w.started_at]]));
  }
  await load();
  const timer = setInterval(() => { if (!document.hidden) load().catch(() => {}); }, 1000);
  return () => clearInterval(timer);
}

// ---- routing ----------------------------------------------------------------------

async function route() {
  stopPage();
  stopPage = () => {};
  document.getElementById("sign-out").hidden = !token();
  if (!token()) return signIn();
  const [path, query] = (location.hash.slice(1) || "/executions").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  try {
    let stop;
    if (parts[0] === "executions" && parts[1]) stop = await executionPage(parts[1]);
    else if (parts[0] === "actions") stop = await actionsPage();
    else if (parts[0] === "queue") stop = await queuePage();
    else stop = await executionsPage(params);
    if (stop) stopPage = stop;
    main.focus({ preventScroll: true });
  } catch (e) {
    if (e.status !== 401) show(el("h1", {}, "Error"), el("p", { class: "error", role: "alert" }, e.message));
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  route();
});
window.addEventListener("hashchange", route);
route();
