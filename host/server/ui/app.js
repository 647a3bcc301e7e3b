// wasmflow web UI: executions, one execution (input, output, logs, the
// workflow graph, task tree, re-run form), actions (each with a run form
// and its recent executions), queue. Plain DOM and SVG, no build step, no
// CDN.
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
  for (const id of ["executions", "actions", "queue", "inquiries", "rules", "events", "keys"]) {
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

const STATUSES = ["pending", "running", "paused", "succeeded", "failed", "timed_out", "canceled"];
const RANGES = [["", "any time"], ["1h", "last hour"], ["24h", "last day"], ["7d", "last week"], ["30d", "last 30 days"]];

async function executionsPage(params) {
  setNav("executions");
  const statuses = (params.get("status") || "").split(",").filter(Boolean);
  const action = params.get("action") || "";
  const since = params.get("since") || "";
  // Filters live in the address, so a filtered list can be shared.
  const refilter = () => {
    const q = new URLSearchParams();
    const checked = boxes.filter((b) => b.checked).map((b) => b.value);
    if (checked.length) q.set("status", checked.join(","));
    if (actionSelect.value) q.set("action", actionSelect.value);
    if (range.value) q.set("since", range.value);
    location.hash = q.toString() ? `#/executions?${q}` : "#/executions";
  };
  const boxes = STATUSES.map((s) => el("input", { type: "checkbox", name: "status", value: s,
    id: `status-${s}`, checked: statuses.includes(s), onchange: refilter }));
  const statusFilter = el("fieldset", { id: "status-filter", class: "checks" },
    el("legend", {}, "Status"),
    STATUSES.map((s, i) => el("label", { for: `status-${s}` }, boxes[i], ` ${s}`)));
  const names = (await api("/actions")).map((a) => a.name);
  if (action && !names.includes(action)) names.push(action);
  const actionSelect = el("select", { id: "action-filter", onchange: refilter },
    ["", ...names].map((n) => el("option", { value: n, selected: n === action }, n || "any")));
  const range = el("select", { id: "since-filter", onchange: refilter },
    RANGES.map(([v, label]) => el("option", { value: v, selected: v === since }, label)));
  // Narrows the rows shown, by id or action, as it is typed.
  const search = el("input", { type: "search", id: "search", placeholder: "id or action",
    oninput: () => narrow() });
  const tbody = el("tbody");
  const more = el("p");
  show(el("h1", {}, "Executions"),
    el("div", { class: "toolbar" },
      statusFilter,
      el("div", {}, el("label", { for: "action-filter" }, "Action"), actionSelect),
      el("div", {}, el("label", { for: "since-filter" }, "Created"), range),
      el("div", {}, el("label", { for: "search" }, "Search"), search)),
    // Busy until the first page of this filter is in (a screen reader
    // waits; so does anything reading the rows).
    el("table", { id: "executions", "data-filters": params.toString(), "aria-busy": "true" },
      el("thead", {}, el("tr", {}, ["Id", "Action", "Status", "Created", "Took", "Error"].map((h) => el("th", { scope: "col" }, h)))),
      tbody),
    more);
  let before = null;
  function query(extra = {}) {
    const q = new URLSearchParams({ limit: "50", ...extra });
    if (statuses.length) q.set("status", statuses.join(","));
    if (action) q.set("action", action);
    if (since) q.set("since", since);
    return q;
  }
  async function load() {
    const page = await api(`/executions?${query()}`);
    fill(tbody, ...page.executions.map(row));
    tbody.parentElement.setAttribute("aria-busy", "false");
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
    node.attempt > 1 ? el("span", { class: "hint" }, ` attempt ${node.attempt}`) : null,
    node.error ? el("div", { class: "error" }, `[${node.error.code}] ${node.error.message}`) : null,
    (node.children || []).length ? (node.children || []).map(treeList) : null));
}

// Every log line of a tree's tasks, each with the task it came from.
function taskLogs(node, prefix = "") {
  const here = prefix ? (node.logs || []).map((l) => `${prefix}: [${l.level}] ${l.message}\n`) : [];
  return here.concat(...(node.children || []).map((c) => taskLogs(c, prefix ? `${prefix}/${c.task}` : c.task)));
}

function whoStarted(by) {
  if (!by) return null;
  const [kind, name] = Object.entries(by)[0];
  // A rule: its name, and the event it was enforced on.
  if (kind === "rule") return ["rule ", el("code", {}, name.rule), " on ",
    el("a", { href: `#/events/${name.trigger}`, id: "started-by-trigger" }, `trigger instance ${name.trigger}`)];
  return `${kind} ${name}`;
}

async function executionPage(id) {
  setNav("executions");
  let r = await api(`/executions/${id}`);
  const controller = new AbortController();
  const logs = el("pre", { id: "logs", class: "logs", "aria-live": "polite" });
  const statusEl = el("span", { id: "status" }, statusBadge(r.status));
  const fields = el("dl", { id: "fields" });
  const io = el("div", { class: "grid" });
  const graph = el("section", { id: "graph-section", "aria-labelledby": "graph-h" });
  const tree = el("section", { id: "tree", class: "tree", "aria-labelledby": "tree-h" });
  const actions = el("p");
  const rerun = el("section", { "aria-labelledby": "rerun-h" });

  function renderRecord() {
    fill(statusEl, statusBadge(r.status));
    const row = (k, v) => v === null || v === undefined || v === "" ? null : [el("dt", {}, k), el("dd", {}, v)];
    const link = (x) => x ? el("a", { href: `#/executions/${x}` }, x) : null;
    fill(fields,
      row("Action", [nameOf(r), r.name && r.name !== r.action ? el("span", { class: "hint" }, ` (${r.action})`) : null]),
      r.source && r.source !== r.action ? row("Source", el("code", {}, r.source)) : null,
      row("Kind", r.kind),
      row("Started by", whoStarted(r.started_by)),
      row("Task", r.task),
      row("Attempt", r.attempt > 1 ? String(r.attempt) : null),
      row("Created", when(r.created_at)),
      row("Started", r.started_at ? when(r.started_at) : null),
      row("Ended", r.ended_at ? when(r.ended_at) : null),
      row("Took", took(r)),
      row("Worker", r.worker),
      row("Re-run of", link(r.rerun_of)),
      row("Replay of", link(r.replay_of)),
      row("Parent", link(r.parent)),
      row("Grants", el("code", {}, JSON.stringify(r.grants))));
    fill(io,
      el("div", {}, el("h2", {}, "Input"), el("pre", { id: "input" }, pretty(r.input))),
      el("div", {}, el("h2", {}, "Result"), el("pre", { id: "result" }, pretty(r.result))),
      r.error ? el("div", {}, el("h2", {}, "Error"), el("pre", { id: "error", class: "error" }, pretty(r.error))) : null);
    const done = !["pending", "running", "paused"].includes(r.status);
    const post = (what, said) => async () => {
      try { await api(`/executions/${r.id}/${what}`, { method: "POST" }); toast(said); }
      catch (e) { toast(e.message); }
    };
    fill(actions,
      done ? null : el("button", { type: "button", id: "cancel", onclick: post("cancel", "cancel requested") }, "Cancel"),
      r.kind === "workflow" && r.status === "running"
        ? el("button", { type: "button", id: "pause", onclick: post("pause", "pausing: running tasks finish, none starts") }, "Pause") : null,
      r.status === "paused"
        ? el("button", { type: "button", id: "resume", onclick: async () => {
            try { await api(`/executions/${r.id}/resume`, { method: "POST" }); toast("resumed"); setTimeout(route, 300); }
            catch (e) { toast(e.message); } } }, "Resume") : null,
      done && r.kind === "action" ? el("button", { type: "button", id: "replay", onclick: async () => {
        try { const rep = await api(`/executions/${r.id}/replay`, { method: "POST" }); toast(rep.verdict);
          location.hash = `#/executions/${rep.record.id}`; }
        catch (e) { toast(e.message); } } }, "Replay") : null);
    if (done && r.kind !== "workflow") {
      const lines = (r.logs || []).map(logLine);
      fill(logs, lines.length ? lines : "(no log lines)");
    }
  }

  function logLine(l) { return `[${l.level}] ${l.message}\n`; }

  async function renderTasks() {
    if (r.kind !== "workflow") { fill(tree); fill(graph); return; }
    const [t, g] = await Promise.all([api(`/executions/${r.id}?tree=true`), api(`/executions/${r.id}/graph`)]);
    fill(graph, el("h2", { id: "graph-h" }, "Graph"), drawGraph(g), taskTable(g));
    fill(tree, el("h2", { id: "tree-h" }, "Task executions"), treeList(t));
    // A workflow's log lines are its tasks'.
    const lines = taskLogs(t);
    fill(logs, lines.length ? lines : "(no log lines yet)");
  }

  show(el("h1", {}, "Execution ", el("code", {}, r.id), " ", statusEl), fields, actions, io,
    graph, tree, el("h2", {}, "Logs"), logs, rerun);
  renderRecord();
  await renderTasks();
  await rerunForm(r, rerun);

  let timer = null;
  // Paused too: an answered inquiry or a resume sends it on any moment
  // (the server queues it before it answers), and this page follows it.
  if (["pending", "running", "paused"].includes(r.status)) {
    if (r.kind === "workflow") timer = setInterval(() => renderTasks().catch(() => {}), 1000);
    follow(r.id, (event, data) => {
      if (event === "log" && r.kind !== "workflow") logs.append(logLine(data));
      else if (event === "end") {
        api(`/executions/${r.id}`).then((rec) => { r = rec; renderRecord(); return renderTasks(); })
          .then(() => { if (timer) clearInterval(timer); }).catch(() => {});
      }
    }, controller.signal).catch(() => {});
  }
  return () => { controller.abort(); if (timer) clearInterval(timer); };
}

function elapsedOf(t) {
  if (!t.started_at) return "";
  const end = t.ended_at ? new Date(t.ended_at) : new Date();
  const ms = end - new Date(t.started_at);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

// Each task: its state, attempts, time and error, linked to its latest
// execution.
function taskTable(g) {
  return el("table", { id: "tasks" },
    el("thead", {}, el("tr", {}, ["Task", "State", "Attempts", "Took", "Error"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, g.tasks.map((t) => el("tr", { "data-task": t.name },
      el("td", {}, t.execution ? el("a", { href: `#/executions/${t.execution}` }, t.name) : t.name),
      el("td", {}, statusBadge(t.state), t.reused_from ? el("span", { class: "hint" }, " (reused)") : null),
      el("td", {}, String(t.attempts), t.items !== undefined ? el("span", { class: "hint" }, ` (${t.items} items)`) : null),
      el("td", {}, elapsedOf(t)),
      el("td", { class: "error" }, t.error ? `[${t.error.code}] ${t.error.message}` : "")))));
}

// ---- the workflow graph (SVG) ------------------------------------------------------

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clip(text, n) { return text.length > n ? `${text.slice(0, n - 1)}…` : text; }

// Tasks in layers (a task's layer: how many transitions from a start task
// reach it first), top to bottom; transitions as arrows, those that go back
// up (loops) around the right side. Tasks nothing ran are greyed.
function drawGraph(g) {
  const layer = new Map();
  const queue = [];
  for (const s of g.start) { layer.set(s, 0); queue.push(s); }
  while (queue.length) {
    const n = queue.shift();
    for (const t of g.transitions) {
      if (t.from === n && !layer.has(t.to)) { layer.set(t.to, layer.get(n) + 1); queue.push(t.to); }
    }
  }
  let deepest = Math.max(0, ...layer.values());
  for (const t of g.tasks) if (!layer.has(t.name)) layer.set(t.name, ++deepest);
  const rows = [];
  for (const t of g.tasks) (rows[layer.get(t.name)] ||= []).push(t);
  const W = 176, H = 54, GX = 28, GY = 56, PAD = 24;
  const widest = Math.max(1, ...rows.map((r) => (r ? r.length : 0)));
  const width = widest * W + (widest - 1) * GX + 2 * PAD + 60;
  const height = rows.length * H + (rows.length - 1) * GY + 2 * PAD;
  const at = new Map();
  rows.forEach((row, i) => {
    if (!row) return;
    const rowWidth = row.length * W + (row.length - 1) * GX;
    const x0 = (width - 60 - rowWidth) / 2;
    row.forEach((t, j) => at.set(t.name, { x: x0 + j * (W + GX), y: PAD + i * (H + GY) }));
  });
  const edges = g.transitions.filter((t) => at.has(t.from) && at.has(t.to)).map((t, k) => {
    const a = at.get(t.from), b = at.get(t.to);
    let d, lx, ly;
    if (layer.get(t.to) > layer.get(t.from)) {
      const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y;
      d = `M${x1},${y1} C${x1},${y1 + GY / 2} ${x2},${y2 - GY / 2} ${x2},${y2 - 2}`;
      lx = (x1 + x2) / 2; ly = (y1 + y2) / 2;
    } else {
      // Back (or sideways): out of the right side, around, into the right side.
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x + W + 2, y2 = b.y + H / 2;
      const out = Math.max(x1, x2) + 30 + 8 * (k % 3);
      d = `M${x1},${y1} C${out},${y1} ${out},${y2} ${x2},${y2}`;
      lx = out - 4; ly = (y1 + y2) / 2;
    }
    return svg("g", { class: "edge", "data-from": t.from, "data-to": t.to },
      svg("path", { d, "marker-end": "url(#arrow)" }),
      t.when ? svg("text", { x: lx, y: ly, class: "when", "text-anchor": "middle" },
        svg("title", {}, t.when), clip(t.when.replace(/^\{\{\s*|\s*\}\}$/g, ""), 22)) : null);
  });
  const nodes = g.tasks.map((t) => {
    const { x, y } = at.get(t.name);
    const detail = [t.state.replace("_", " "), t.attempts > 1 ? `×${t.attempts}` : null, elapsedOf(t) || null]
      .filter(Boolean).join(" · ");
    const title = [`${t.name}: ${t.action}`, t.error ? `[${t.error.code}] ${t.error.message}` : null]
      .filter(Boolean).join("\n");
    const box = svg("g", { class: `node state-${t.state}`, "data-task": t.name, transform: `translate(${x},${y})` },
      svg("title", {}, title),
      svg("rect", { width: W, height: H, rx: 7 }),
      svg("text", { x: W / 2, y: 22, class: "name", "text-anchor": "middle" }, clip(t.name, 22)),
      svg("text", { x: W / 2, y: 41, class: "detail", "text-anchor": "middle" }, clip(detail, 28)));
    return t.execution
      ? svg("a", { href: `#/executions/${t.execution}`, "aria-label": `${t.name}, ${t.state}` }, box)
      : box;
  });
  return svg("svg", { id: "graph", viewBox: `0 0 ${width} ${height}`, width, role: "img",
      "aria-label": `Workflow graph: ${g.tasks.length} tasks` },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z" }))),
    edges, nodes);
}

// ---- forms from JSON Schema ----------------------------------------------------------

// Fields for an input object, generated from its JSON Schema and filled
// with `values`; `read()` gives the object (or throws on a bad JSON field).
function inputFields(schema, values, prefix) {
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const inputs = [];
  const nodes = Object.entries(props).map(([name, sub]) => {
    const id = `${prefix}${name}`;
    const value = values ? values[name] : undefined;
    const type = schemaType(sub);
    let input;
    if (type === "boolean") input = el("input", { type: "checkbox", id, name, checked: value === true });
    else if (type === "integer" || type === "number")
      input = el("input", { type: "number", id, name, step: type === "integer" ? "1" : "any",
        value: value === undefined || value === null ? "" : String(value), required: required.has(name) });
    else if (type === "string")
      // A secret parameter (`@secret`, writeOnly) is typed unseen; a
      // re-run's form holds its sealed reference, never its value.
      input = el("input", { type: sub.writeOnly ? "password" : "text", autocomplete: sub.writeOnly ? "off" : undefined,
        id, name, value: value === undefined || value === null ? "" : value, required: required.has(name) });
    else input = el("textarea", { id, name, rows: "4" }, value === undefined ? "" : JSON.stringify(value, null, 2));
    inputs.push([name, type, input]);
    return el("div", {}, el("label", { for: id }, name, " ",
      el("span", { class: "hint" }, `${type}${required.has(name) ? "" : ", optional"}${sub.description ? " — " + sub.description : ""}`)), input);
  });
  function read() {
    const out = {};
    for (const [name, type, field] of inputs) {
      if (type === "boolean") out[name] = field.checked;
      else if (type === "integer" || type === "number") out[name] = field.value === "" ? null : Number(field.value);
      else if (type === "string") out[name] = field.value === "" && !required.has(name) ? null : field.value;
      else {
        try { out[name] = field.value.trim() === "" ? null : JSON.parse(field.value); }
        catch (err) { throw new Error(`${name}: not JSON: ${err.message}`); }
      }
    }
    return out;
  }
  return { nodes, read };
}

const GRANTS = [
  ["read", "read-only directories", "HOST_DIR[::GUEST_DIR]"],
  ["write", "read-write directories", "HOST_DIR[::GUEST_DIR]"],
  ["env", "environment variables", "NAME or NAME=VALUE"],
  ["net", "network hosts", "HOST or HOST:PORT"],
  ["exec", "programs", "NAME"],
  ["key", "datastore keys", "NAME or PATTERN (system.vm.*)"],
  ["secret_env", "secrets as environment variables", "VAR=KEY"],
];

// Grant fields (comma-separated lists); `read()` gives the grants asked
// for, or undefined when none is.
function grantFields(prefix, legend) {
  const inputs = GRANTS.map(([kind, what, form]) => [kind, el("input", { type: "text", id: `${prefix}grant-${kind}`,
    name: kind, placeholder: form, autocomplete: "off" }), what]);
  // Folded away: most runs ask for none.
  const node = el("details", { id: `${prefix}grants`, class: "grants" }, el("summary", {}, legend),
    el("fieldset", {}, el("legend", { class: "hint" }, "Each a comma-separated list"),
      inputs.map(([kind, input, what]) => el("div", {},
        el("label", { for: input.id }, kind, " ", el("span", { class: "hint" }, what)), input))));
  function read() {
    const out = {};
    for (const [kind, input] of inputs) {
      const list = input.value.split(",").map((v) => v.trim()).filter(Boolean);
      if (list.length) out[kind] = list;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return { node, read };
}

// A form generated from the action's JSON Schema, filled with the recorded
// input, with grants to add (a re-run that fixes a missing grant).
async function rerunForm(r, section) {
  if (!r.name) {
    fill(section, el("h2", { id: "rerun-h" }, "Re-run"),
      el("p", { class: "hint" }, "Not one of this server's actions; re-run it from the CLI."));
    return;
  }
  const desc = await api(`/actions/${encodeURIComponent(r.name)}`);
  const fields = inputFields(desc.input_schema, r.input, "field-");
  const grants = grantFields("rerun-", "Grants to add to the recorded ones (within this server's)");
  const error = el("p", { class: "error", role: "alert", id: "rerun-error" });
  const form = el("form", { id: "rerun", onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const body = {};
      try { body.input = fields.read(); } catch (err) { error.textContent = err.message; return; }
      const asked = grants.read();
      if (asked) body.grants = asked;
      try {
        const accepted = await api(`/executions/${r.id}/re-run`, { method: "POST", body });
        toast(`started ${accepted.id}`);
        location.hash = `#/executions/${accepted.id}`;
      } catch (err) { error.textContent = err.message; }
    } },
    fields.nodes, grants.node, el("p", {}, el("button", { class: "primary", type: "submit" }, "Re-run")), error);
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

// A name as an id fragment (ids must not hold dots for CSS selectors).
function slug(name) { return name.replace(/[^A-Za-z0-9_-]/g, "_"); }

async function actionsPage() {
  setNav("actions");
  const list = await api("/actions");
  show(el("h1", {}, "Actions"),
    list.length ? null : el("p", {}, "No actions: start the server with --actions DIR or install a pack."),
    ...list.map(actionSection));
}

function actionSection(a) {
  const key = slug(a.name);
  const recent = el("div", { id: `recent-${key}` });
  const runArea = el("div");
  const details = el("details", { id: `run-${key}`, ontoggle: () => {
      if (details.open && !runArea.firstChild) runForm(a.name, key, runArea).catch((e) => fill(runArea, el("p", { class: "error" }, e.message)));
    } },
    el("summary", {}, `Run ${a.name}…`), runArea);
  api(`/executions?${new URLSearchParams({ action: a.name, limit: "5" })}`).then((page) => {
    fill(recent, page.executions.length
      ? el("ul", { class: "recent" }, page.executions.map((r) => el("li", {},
          el("a", { href: `#/executions/${r.id}`, class: "exec-link" }, el("code", {}, r.id)), " ",
          statusBadge(r.status), el("span", { class: "hint" }, ` ${when(r.created_at)}`))))
      : el("p", { class: "hint" }, "Not run yet."));
  }).catch(() => {});
  return el("section", { id: `action-${a.name}`, class: "action" },
    el("h2", {}, a.name, " ", el("span", { class: "hint" }, a.kind)),
    a.docs ? el("p", {}, a.docs) : null,
    el("pre", {}, a.signature),
    details,
    el("h3", {}, "Recent executions"), recent);
}

// Run an action or workflow: its input from the JSON Schema, and grants
// (within this server's; a workflow without any gets the server's).
async function runForm(name, key, area) {
  const desc = await api(`/actions/${encodeURIComponent(name)}`);
  const prefix = `run-${key}-`;
  const fields = inputFields(desc.input_schema, null, `${prefix}field-`);
  const grants = grantFields(prefix, desc.kind === "workflow"
    ? "Grants (none given: the server's, narrowed by the workflow)" : "Grants (none given: nothing)");
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "run", onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      const body = { action: name };
      try { body.input = fields.read(); } catch (err) { error.textContent = err.message; return; }
      const asked = grants.read();
      if (asked) body.grants = asked;
      try {
        const accepted = await api("/executions", { method: "POST", body });
        toast(`started ${accepted.id}`);
        location.hash = `#/executions/${accepted.id}`;
      } catch (err) { error.textContent = err.message; }
    } },
    fields.nodes, grants.node, el("p", {}, el("button", { class: "primary", type: "submit" }, "Run")), error);
  fill(area, form);
  const first = form.querySelector("input, textarea");
  if (first) first.focus();
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

// Open `core.ask` questions, each with an answer form generated from its
// schema; answering sends the workflow on.
async function inquiriesPage() {
  setNav("inquiries");
  const open = await api("/inquiries");
  show(el("h1", {}, "Inquiries"),
    open.length ? null : el("p", {}, "No workflow waits for an answer."),
    ...open.map((q) => {
      const key = slug(q.id);
      const fields = inputFields(q.schema, null, `inq-${key}-`);
      const error = el("p", { class: "error", role: "alert" });
      const form = el("form", { id: `inquiry-${key}`, class: "inquiry", onsubmit: async (e) => {
          e.preventDefault();
          error.textContent = "";
          let response;
          try { response = fields.read(); } catch (err) { error.textContent = err.message; return; }
          for (const [k, v] of Object.entries(response)) if (v === null) delete response[k];
          try {
            await api(`/inquiries/${q.id}/respond`, { method: "POST", body: { response } });
            toast("answered");
            location.hash = `#/executions/${q.workflow}`;
          } catch (err) { error.textContent = err.message; }
        } },
        fields.nodes, el("p", {}, el("button", { class: "primary", type: "submit" }, "Respond")), error);
      return el("section", { class: "action" },
        el("h2", {}, el("code", {}, q.id)),
        el("dl", {},
          el("dt", {}, "Workflow"), el("dd", {}, el("a", { href: `#/executions/${q.workflow}` }, q.workflow)),
          el("dt", {}, "Task"), el("dd", {}, q.task),
          q.route ? [el("dt", {}, "Route"), el("dd", {}, q.route)] : null,
          q.expires_at ? [el("dt", {}, "Expires"), el("dd", {}, when(q.expires_at))] : null),
        form);
    }));
}

// The datastore's keys, secrets masked (the server never sends a secret's
// value here).
async function keysPage(params) {
  setNav("keys");
  const prefix = params.get("prefix") || "";
  const input = el("input", { type: "search", id: "key-prefix", value: prefix, placeholder: "system.",
    onchange: () => { location.hash = input.value ? `#/keys?prefix=${encodeURIComponent(input.value)}` : "#/keys"; } });
  const keys = await api(`/keys?${new URLSearchParams({ prefix })}`);
  show(el("h1", {}, "Keys"),
    el("div", { class: "toolbar" }, el("div", {}, el("label", { for: "key-prefix" }, "Names starting with"), input)),
    keys.length
      ? el("table", { id: "keys" },
          el("thead", {}, el("tr", {}, ["Name", "Value", "Secret", "Expires", "Updated"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, keys.map((k) => el("tr", { "data-key": k.name },
            el("td", {}, el("code", {}, k.name)), el("td", {}, k.secret ? el("span", { class: "hint" }, k.value) : k.value),
            el("td", {}, k.secret ? "yes" : ""), el("td", {}, k.expires_at ? when(k.expires_at) : ""),
            el("td", {}, when(k.updated_at))))))
      : el("p", {}, "No keys: set them with `wasmflow key set NAME VALUE`."));
}

// ---- the event bus ----------------------------------------------------------------

// The rules the server enforces, each with when it last started an
// execution.
async function rulesPage() {
  setNav("rules");
  const [rules, enforced] = await Promise.all([api("/rules"), api("/rule-enforcements?limit=1000")]);
  const last = {};
  for (const e of enforced) if (e.outcome === "started" && !(e.rule in last)) last[e.rule] = e;
  const params = (p) => Object.keys(p || {}).length ? ` ${JSON.stringify(p)}` : "";
  show(el("h1", {}, "Rules"),
    rules.length
      ? el("table", { id: "rules" },
          el("thead", {}, el("tr", {}, ["Rule", "Trigger", "Action", "Enabled", "Last started"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, rules.map((r) => el("tr", { "data-rule": r.name },
            el("td", {}, el("code", {}, r.name), r.description ? el("div", { class: "hint" }, r.description) : null),
            el("td", {}, el("code", {}, r.trigger.type), params(r.trigger.parameters)),
            el("td", {}, el("code", {}, r.action)),
            el("td", {}, r.enabled ? "yes" : "no"),
            el("td", { class: "last-started" }, last[r.name]
              ? [when(last[r.name].at), " ", el("a", { href: `#/executions/${last[r.name].execution}` }, "execution")]
              : "never")))))
      : el("p", {}, "No rules: serve them with `wasmflow serve --rules DIR`."));
}

// Events (trigger instances), newest first.
async function eventsPage() {
  setNav("events");
  const instances = await api("/trigger-instances?limit=200");
  show(el("h1", {}, "Events"),
    instances.length
      ? el("table", { id: "events" },
          el("thead", {}, el("tr", {}, ["Trigger instance", "Type", "Parameters", "Received", "Processed"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, instances.map((t) => el("tr", { "data-instance": t.id },
            el("td", {}, el("a", { href: `#/events/${t.id}`, class: "event-link" }, el("code", {}, t.id))),
            el("td", {}, el("code", {}, t.type)),
            el("td", {}, Object.keys(t.parameters || {}).length ? JSON.stringify(t.parameters) : ""),
            el("td", {}, when(t.received_at)),
            el("td", {}, t.processed ? "yes" : "not yet")))))
      : el("p", {}, "No events yet: webhooks, executions' ends and timers that rules listen to show here."));
}

// One event: its payload, and what each rule did with it.
async function eventPage(id) {
  setNav("events");
  const { instance, enforcements } = await api(`/trigger-instances/${id}`);
  show(el("h1", {}, "Event ", el("code", {}, instance.id)),
    el("dl", { id: "event-fields" },
      el("dt", {}, "Type"), el("dd", {}, el("code", {}, instance.type)),
      el("dt", {}, "Received"), el("dd", {}, when(instance.received_at)),
      el("dt", {}, "Processed"), el("dd", {}, instance.processed ? "yes" : "not yet")),
    el("h2", {}, "Payload"), el("pre", { id: "payload" }, pretty(instance.payload)),
    el("h2", {}, "Rules"),
    enforcements.length
      ? el("table", { id: "enforcements" },
          el("thead", {}, el("tr", {}, ["Rule", "Outcome", "Execution", "Why"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, enforcements.map((e) => el("tr", { "data-rule": e.rule },
            el("td", {}, el("code", {}, e.rule)), el("td", {}, e.outcome),
            el("td", {}, e.execution ? el("a", { href: `#/executions/${e.execution}`, class: "exec-link" }, e.execution) : ""),
            el("td", {}, e.message || "")))))
      : el("p", {}, "No rule listens to it."));
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
    else if (parts[0] === "keys") stop = await keysPage(params);
    else if (parts[0] === "inquiries") stop = await inquiriesPage();
    else if (parts[0] === "rules") stop = await rulesPage();
    else if (parts[0] === "events" && parts[1]) stop = await eventPage(parts[1]);
    else if (parts[0] === "events") stop = await eventsPage();
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
