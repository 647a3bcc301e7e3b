// Drives the web UI in Debian's headless Chromium (playwright-core, no
// browser download): sign in (a wrong token first), filter the executions,
// open a workflow execution and its graph, re-run it through the form
// (a grant beyond the server's refused, then one edited parameter), watch
// the new execution finish live, open a task from the graph, run an action
// from the Actions page, see the event bus's rules and events, and save
// screenshots.
//
// usage: node tests/browser/ui.mjs URL TOKEN EXECUTION_ID OUT_DIR SECRET_EXECUTION_ID
// (the last: an execution given the secret `hunter2-ui`, whose page must
// show it masked and never hold it).
// Prints the new execution's id on success; exits 1 with a reason otherwise.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, token, original, outDir, secretive] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const problems = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  // A laptop screen.
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // The browser logs a refused request as an error: expected only while
  // the wrong token, or a grant beyond the server's, is tried.
  let refusalExpected = false;
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (refusalExpected && /status of 40[13]/.test(m.text())) return;
    problems.push(`console: ${m.text()}`);
  });
  page.setDefaultTimeout(30000);

  await page.goto(url);
  // A wrong token is refused, and the form says so where it was typed.
  refusalExpected = true;
  await page.locator("#token").focus();
  await page.keyboard.type("wft_not-a-token");
  await page.keyboard.press("Enter");
  await page.getByRole("alert").filter({ hasText: "not accepted" }).waitFor();
  await page.screenshot({ path: `${outDir}/sign-in-refused.png` });
  refusalExpected = false;
  // Sign in with the keyboard only (the wrong token is selected: typing
  // replaces it).
  await page.keyboard.type(token);
  await page.keyboard.press("Enter");
  await page.locator("table#executions").waitFor();
  const link = page.locator(`tr[data-id="${original}"] a.exec-link`);
  await link.waitFor();

  // Filters: an action from the catalog (in the address, so it can be
  // shared), then a search that narrows the rows shown.
  const rows = page.locator("table#executions tbody tr:visible");
  const long = await page.locator("#action-filter option").filter({ hasText: "provision-" }).getAttribute("value");
  await page.locator("#action-filter").selectOption(long);
  await page.waitForFunction(() => location.hash.includes("action="));
  await page.locator("table#executions tbody tr").filter({ hasText: long }).waitFor();
  if ((await rows.count()) !== 1) throw new Error(`filtered by ${long}: ${await rows.count()} rows`);
  await page.locator("#action-filter").selectOption("");
  await link.waitFor();
  await page.locator("#search").fill(original.slice(0, 14).toLowerCase());
  if ((await rows.count()) !== 1) throw new Error(`search: ${await rows.count()} rows`);
  await page.locator("#search").fill("");
  if ((await rows.count()) < 2) throw new Error(`search cleared: ${await rows.count()} rows`);
  // Several statuses, then a time range; each in the address.
  // The table of that filter, its first page in (rows are read next).
  const filtered = (q) => page.locator(`table#executions[data-filters="${q}"][aria-busy="false"]`).waitFor();
  await page.locator("#status-succeeded").check();
  await filtered("status=succeeded");
  await page.locator("#status-failed").check();
  await filtered("status=succeeded%2Cfailed");
  const shown = await page.locator("table#executions tbody td:nth-child(3)").allTextContents();
  if (!shown.length || shown.some((t) => !["succeeded", "failed"].includes(t))) throw new Error(`statuses: ${shown}`);
  await page.locator("#status-succeeded").uncheck();
  await filtered("status=failed");
  if ((await rows.count()) !== 0) throw new Error(`failed: ${await rows.count()} rows`);
  await page.locator("#status-failed").uncheck();
  await filtered("");
  await page.locator("#since-filter").selectOption("1h");
  await filtered("since=1h");
  await link.waitFor();
  await page.screenshot({ path: `${outDir}/executions.png`, fullPage: true });
  await page.locator("#since-filter").selectOption("");
  await filtered("");
  await link.focus();
  await page.keyboard.press("Enter");

  // The execution page: input, result, tree, and the re-run form built
  // from the workflow's input schema, filled with the recorded input.
  await page.locator("#rerun").waitFor();
  // Its graph: each task with its state and a link to its execution, the
  // transition between them; and who started it.
  const node = (t) => page.locator(`#graph g.node[data-task="${t}"]`);
  for (const t of ["first", "second"]) {
    const cls = await node(t).getAttribute("class");
    if (!cls.includes("state-succeeded")) throw new Error(`graph node ${t}: ${cls}`);
  }
  if ((await page.locator("#graph g.edge").count()) !== 1) throw new Error("graph: not one transition");
  const firstRow = await page.locator('#tasks tr[data-task="first"]').textContent();
  if (!firstRow.includes("succeeded")) throw new Error(`task table: ${firstRow}`);
  if (!(await page.locator("#fields").textContent()).includes("token ci")) throw new Error("no `started by`");
  await page.screenshot({ path: `${outDir}/execution-graph.png`, fullPage: true });
  // A grant beyond the server's is refused, and the form says why.
  refusalExpected = true;
  await page.locator("#rerun-grants summary").click();
  await page.locator("#rerun-grant-exec").fill("rm");
  await page.getByRole("button", { name: "Re-run" }).click();
  await page.locator("#rerun-error").filter({ hasText: "beyond what this server allows" }).waitFor();
  refusalExpected = false;
  await page.locator("#rerun-grant-exec").fill("");
  const start = page.locator("#field-start");
  if ((await start.inputValue()) !== "1") throw new Error(`start is pre-filled with ${await start.inputValue()}`);
  const dir = await page.locator("#field-dir").inputValue();
  if (!dir) throw new Error("dir is not pre-filled");
  await start.fill("20");
  await page.getByRole("button", { name: "Re-run" }).click();

  // The new execution's page, updated live until it ends.
  await page.waitForFunction((old) => location.hash.startsWith("#/executions/") && !location.hash.endsWith(old), original);
  const id = (await page.evaluate(() => location.hash)).split("/").pop();
  await page.locator("#status .status-succeeded").waitFor({ timeout: 60000 });
  // The end event shows the status at once; the result comes with the
  // record fetched after it.
  await page.locator("#result").filter({ hasText: "22" }).waitFor({ timeout: 10000 });
  const input = JSON.parse(await page.locator("#input").textContent());
  if (input.start !== 20 || input.dir !== dir) throw new Error(`input: ${JSON.stringify(input)}`);

  // Its task tree.
  const tree = page.locator("#tree");
  await tree.getByRole("link", { name: "second" }).waitFor();
  const treeText = await tree.textContent();
  for (const want of ["first", "second", "succeeded"]) {
    if (!treeText.includes(want)) throw new Error(`tree lacks ${want}: ${treeText}`);
  }
  await page.screenshot({ path: `${outDir}/execution-tree.png`, fullPage: true });
  // A task opens from the graph.
  await page.locator('#graph g.node[data-task="second"].state-succeeded').waitFor();
  await page.locator('#graph a[aria-label^="second"]').click();
  await page.locator("#fields").filter({ hasText: "second" }).waitFor();
  await page.locator("#result").filter({ hasText: "22" }).waitFor();

  // Actions and queue pages.
  await page.getByRole("link", { name: "Actions" }).click();
  await page.locator("#action-chain").waitFor();
  const chain = await page.locator("#action-chain").textContent();
  if (!chain.includes("workflow chain(dir: string")) throw new Error(`actions page: ${chain}`);
  // Each action lists its recent executions.
  await page.locator("#recent-chain a.exec-link").first().waitFor();
  if ((await page.locator("#recent-chain a.exec-link").count()) < 2) throw new Error("chain's recent executions");
  // Run one from its form (generated from its JSON Schema).
  await page.locator("#run-add summary").click();
  await page.locator("#run-add-field-a").fill("2");
  await page.locator("#run-add-field-b").fill("3");
  await page.locator("#run-add-grants summary").click();
  await page.locator("#run-add-grant-exec").waitFor({ state: "visible" });
  await page.screenshot({ path: `${outDir}/actions.png`, fullPage: true });
  await page.locator("#run-add").getByRole("button", { name: "Run", exact: true }).click();
  await page.waitForFunction(() => location.hash.startsWith("#/executions/"));
  await page.locator("#status .status-succeeded").waitFor({ timeout: 60000 });
  await page.locator("#result").filter({ hasText: "5" }).waitFor();
  const ran = JSON.parse(await page.locator("#input").textContent());
  if (ran.a !== 2 || ran.b !== 3) throw new Error(`run form input: ${JSON.stringify(ran)}`);
  if (!(await page.locator("#fields").textContent()).includes("token ci")) throw new Error("run: no `started by`");
  await page.getByRole("link", { name: "Actions" }).click();
  await page.locator("#action-chain").waitFor();
  await page.getByRole("link", { name: "Queue" }).click();
  await page.getByText("Running (").waitFor();
  // The worker processes: on this (embedded) store, the server itself.
  await page.getByText("Workers (1)").waitFor();
  await page.getByRole("cell", { name: "this server" }).waitFor();
  await page.screenshot({ path: `${outDir}/queue.png`, fullPage: true });
  // Inquiries: answer the open one from its schema's form; its workflow
  // goes on to succeed with the answer.
  await page.getByRole("link", { name: "Inquiries" }).click();
  const inquiry = page.locator("form.inquiry").first();
  await inquiry.waitFor();
  await page.screenshot({ path: `${outDir}/inquiries.png`, fullPage: true });
  await inquiry.locator('input[name="n"]').fill("5");
  await inquiry.getByRole("button", { name: "Respond" }).click();
  await page.waitForFunction(() => location.hash.startsWith("#/executions/"));
  await page.locator("#status .status-succeeded").waitFor({ timeout: 60000 });
  await page.locator("#result").filter({ hasText: "6" }).waitFor();
  // An execution given a secret: its page shows the mask, never the value.
  await page.goto(`${url}/#/executions/${secretive}`);
  await page.locator("#result").filter({ hasText: "pw=***" }).waitFor();
  await page.locator("#logs").filter({ hasText: "key=***" }).waitFor();
  if ((await page.content()).includes("hunter2")) throw new Error("a secret's value reached an execution's page");

  // The event bus: the rule that runs after each `chain`, when it last
  // started one; the events, one of them opened; the execution it started
  // names the rule and the event.
  await page.getByRole("link", { name: "Rules" }).click();
  const ruleRow = page.locator('#rules tr[data-rule="after-chain"]');
  await ruleRow.locator(".last-started a").waitFor();
  await page.screenshot({ path: `${outDir}/rules.png`, fullPage: true });
  await page.getByRole("link", { name: "Events" }).click();
  await page.locator("#events tr").filter({ hasText: "wasmflow.execution" }).first().waitFor();
  await page.screenshot({ path: `${outDir}/events.png`, fullPage: true });
  await page.locator("#events tr").filter({ hasText: "wasmflow.execution" }).first().locator("a.event-link").click();
  await page.locator("#payload").filter({ hasText: "chain" }).waitFor();
  await page.locator('#enforcements tr[data-rule="after-chain"] a.exec-link').click();
  await page.locator("#started-by-trigger").waitFor();
  await page.locator("#result").filter({ hasText: "text=after chain" }).waitFor();

  // Keys: a plain value shown, a secret masked and never in the page.
  await page.getByRole("link", { name: "Keys" }).click();
  await page.locator('#keys tr[data-key="system.region"]').filter({ hasText: "eu-west" }).waitFor();
  const secretRow = await page.locator('#keys tr[data-key="system.db_password"]').textContent();
  if (!secretRow.includes("***")) throw new Error(`secret row: ${secretRow}`);
  if ((await page.content()).includes("hunter2")) throw new Error("a secret's value reached the page");
  await page.screenshot({ path: `${outDir}/keys.png`, fullPage: true });

  // From a laptop down to a phone, nothing is wider than the screen, long
  // action names included.
  for (const [width, height] of [[1280, 800], [375, 740]]) {
    await page.setViewportSize({ width, height });
    for (const hash of ["#/executions", "#/actions", `#/executions/${id}`, "#/keys", "#/inquiries", "#/rules", "#/events"]) {
      await page.evaluate((h) => { location.hash = h; }, hash);
      await page.locator("main h1").first().waitFor();
      await page.waitForTimeout(300);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      if (wide > width) problems.push(`${hash} at ${width} px is ${wide} px wide`);
    }
  }
  await page.evaluate(() => { location.hash = "#/executions"; });
  await page.locator("table#executions").waitFor();
  await page.screenshot({ path: `${outDir}/executions-phone.png`, fullPage: true });

  if (problems.length) throw new Error(problems.join("\n"));
  console.log(id);
} catch (e) {
  console.error(`ui test failed: ${e.message}${problems.length ? "\n" + problems.join("\n") : ""}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
