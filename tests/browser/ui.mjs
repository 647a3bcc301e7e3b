// Drives the web UI in Debian's headless Chromium (playwright-core, no
// browser download): sign in, open a workflow execution from the table,
// re-run it through the form with one edited parameter, watch the new
// execution finish live, open its task tree, and save screenshots.
//
// usage: node tests/browser/ui.mjs URL TOKEN EXECUTION_ID OUT_DIR
// Prints the new execution's id on success; exits 1 with a reason otherwise.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, token, original, outDir] = process.argv.slice(2);
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
  // the wrong token is tried.
  let refusalExpected = false;
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (refusalExpected && m.text().includes("status of 401")) return;
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
  await page.screenshot({ path: `${outDir}/executions.png`, fullPage: true });
  await link.focus();
  await page.keyboard.press("Enter");

  // The execution page: input, result, tree, and the re-run form built
  // from the workflow's input schema, filled with the recorded input.
  await page.locator("#rerun").waitFor();
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
  await tree.getByRole("link", { name: "second" }).click();
  await page.locator("#result").filter({ hasText: "22" }).waitFor();

  // Actions and queue pages.
  await page.getByRole("link", { name: "Actions" }).click();
  await page.locator("#action-chain").waitFor();
  const chain = await page.locator("#action-chain").textContent();
  if (!chain.includes("workflow chain(dir: string")) throw new Error(`actions page: ${chain}`);
  await page.screenshot({ path: `${outDir}/actions.png`, fullPage: true });
  await page.getByRole("link", { name: "Queue" }).click();
  await page.getByText("Running (").waitFor();
  // The worker processes: on this (embedded) store, the server itself.
  await page.getByText("Workers (1)").waitFor();
  await page.getByRole("cell", { name: "this server" }).waitFor();
  await page.screenshot({ path: `${outDir}/queue.png`, fullPage: true });

  // From a laptop down to a phone, nothing is wider than the screen, long
  // action names included.
  for (const [width, height] of [[1280, 800], [375, 740]]) {
    await page.setViewportSize({ width, height });
    for (const hash of ["#/executions", "#/actions", `#/executions/${id}`]) {
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
