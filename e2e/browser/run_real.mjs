// The main path in headless Chromium against the real binary, with SIPp as
// the operator's phone and the carrier. Started by e2e/browser_real_test.go,
// which starts plateau, seeds the campaign and starts SIPp when this script
// says it is about to click Call (it prints "ready-to-call" and waits for a
// line on stdin).
//
//   BASE_URL=http://127.0.0.1:PORT ARTIFACTS=dir OP_EXT=101 OP_PASSWORD=...
//   SUP_EXT=201 SUP_PASSWORD=... SEC_EXT=301 SEC_PASSWORD=...
//   COMPANY=... NUMBER=+33... CAMPAIGN=name PROPOSED=+33... node run_real.mjs
import { chromium } from "playwright-core";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const env = (k) => {
  const v = process.env[k];
  if (!v) { throw new Error("missing env " + k); }
  return v;
};
const base = env("BASE_URL");
const out = env("ARTIFACTS");
const step = (msg) => console.log("step: " + msg);
// Generous waits for states: a loaded 2-core machine, a real SIP call.
const STATE_WAIT = 45000;

function expect(cond, msg) {
  if (!cond) throw new Error("expectation failed: " + msg);
}

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
async function waitGo() {
  const { value, done } = await lines.next();
  expect(!done && value.trim() === "go", "the test said go, got " + JSON.stringify(value));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    // HTTPS: Chromium trusts the test server's key (its SPKI pin), not
    // every certificate.
    ...(process.env.SPKI ? ["--ignore-certificate-errors-spki-list=" + process.env.SPKI] : []),
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function newPage(name) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: "fr-FR" });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  page.on("request", (req) => {
    if (!req.url().startsWith(base) && !req.url().startsWith("data:")) {
      console.error(name + ": request outside the server: " + req.url());
      process.exitCode = 1;
    }
  });
  page.on("pageerror", (err) => { console.error(name + ": page error: " + err); process.exitCode = 1; });
  return page;
}

// shot writes the screenshot itself (the directory may be recreated by
// another test) and checks it is an image with something in it.
async function shot(page, name) {
  const buf = await page.screenshot({ fullPage: false });
  expect(buf.length > 5000, name + " screenshot is " + buf.length + " bytes");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, name + ".png"), buf);
  console.log("screenshot: " + name + ".png");
}

async function login(page, ext, password, home) {
  await page.goto(base + "/login");
  expect((await page.locator("html").getAttribute("lang")) === "fr", "French by default");
  await page.getByLabel("Identifiant (numéro de poste)").fill(ext);
  await page.getByLabel("Mot de passe").fill(password);
  await page.getByRole("button", { name: "Se connecter" }).click();
  await page.waitForURL((u) => u.pathname === home, { timeout: STATE_WAIT });
}

const pages = {};
try {
  pages.sup = await newPage("supervisor");
  pages.op = await newPage("operator");
  pages.sec = await newPage("security");
  const { sup, op, sec } = pages;
  const opExt = env("OP_EXT");
  const row = sup.locator(`#wallboard tbody tr[data-ext="${opExt}"]`);

  step("supervisor opens the wallboard");
  await login(sup, env("SUP_EXT"), env("SUP_PASSWORD"), "/supervisor");
  await sup.waitForFunction(() => document.getElementById("updated").textContent !== "", null, { timeout: STATE_WAIT });
  await row.waitFor({ timeout: STATE_WAIT });
  await row.locator(".wstate.available").waitFor({ timeout: STATE_WAIT });

  step("operator opens the console, phone registered");
  await login(op, opExt, env("OP_PASSWORD"), "/operator");
  await op.locator("#phone-state.ok").waitFor({ timeout: STATE_WAIT });
  expect(!(await op.locator("#call-state").innerText()).includes("En communication"), "no call before the click");

  step("operator picks the campaign and previews the next contact");
  const campaign = env("CAMPAIGN");
  const option = op.locator("#campaign option").filter({ hasText: campaign });
  expect((await option.count()) === 1, "campaign " + campaign + " offered");
  await op.locator("#campaign").selectOption(await option.getAttribute("value"));
  await op.getByRole("button", { name: "Contact suivant" }).click();
  await op.locator("#pv-company").filter({ hasText: env("COMPANY") }).waitFor({ timeout: STATE_WAIT });
  const number = env("NUMBER");
  // Shown the French way: +33240123458 reads 02 40 12 34 58.
  const shown = number.startsWith("+33") ? ("0" + number.slice(3)).replace(/(\d\d)(?=\d)/g, "$1 ") : number;
  expect((await op.locator("#pv-number").innerText()) === shown, "number shown the French way: " + shown);
  const call = op.getByRole("button", { name: "Appeler" });
  await op.waitForFunction(() => !document.getElementById("btn-call").disabled, null, { timeout: STATE_WAIT });

  step("waiting for the test to start the phone and the carrier");
  console.log("ready-to-call");
  await waitGo();

  step("operator clicks Call; the phone auto-answers, the carrier answers");
  await call.click();
  await op.locator("#call-state").filter({ hasText: "En communication" }).waitFor({ timeout: STATE_WAIT });
  expect((await op.locator("#call-state").innerText()).includes(shown), "the live call shows the number");
  expect(await op.locator("#hangup").isVisible(), "hang-up button shown during the call");
  expect(await op.getByRole("button", { name: "Contact suivant" }).isDisabled(), "next blocked during the call");
  await shot(op, "operator-live");

  step("supervisor sees operator " + opExt + " in the call, live");
  await row.locator(".wstate.in_call").waitFor({ timeout: STATE_WAIT });
  const text = await row.innerText();
  expect(text.includes("en communication") && text.includes(campaign), "wallboard row: " + text);
  await sup.waitForFunction((ext) => {
    const r = document.querySelector(`#wallboard tbody tr[data-ext="${ext}"]`);
    return r && /\b\d+:\d\d\b/.test(r.innerText);
  }, opExt, { timeout: STATE_WAIT });
  await shot(sup, "supervisor-wallboard");

  step("the phone hangs up; the operator enters the outcome");
  await op.locator("#dispose-form:not([hidden])").waitFor({ timeout: STATE_WAIT });
  await op.locator("#call-state").filter({ hasNotText: "En communication" }).waitFor({ timeout: STATE_WAIT });
  await op.locator("#dispose-outcome").filter({ hasText: "décroché" }).waitFor({ timeout: STATE_WAIT });
  await op.getByLabel("Issue", { exact: true }).selectOption("interested");
  await op.locator("#dispose-notes").fill("Rappeler pour un devis.");
  await shot(op, "operator-dispose");
  await op.getByRole("button", { name: "Enregistrer l'issue" }).click();
  await op.getByRole("status").filter({ hasText: "Issue enregistrée" }).waitFor({ timeout: STATE_WAIT });

  step("supervisor sees the operator free again");
  await row.locator(".wstate.available").waitFor({ timeout: STATE_WAIT });

  step("security approves a number proposed by the other officer");
  const proposed = env("PROPOSED");
  await login(sec, env("SEC_EXT"), env("SEC_PASSWORD"), "/security/allowlist");
  await sec.getByRole("button", { name: "Approuver " + proposed, exact: true }).click();
  await sec.getByRole("status").filter({ hasText: "1 numéro(s) approuvé(s)" }).waitFor({ timeout: STATE_WAIT });
  expect((await sec.getByRole("button", { name: "Approuver " + proposed, exact: true }).count()) === 0, "no longer proposed");
  await shot(sec, "security-allowlist");

  if (process.exitCode) { throw new Error("a page error or an outside request (see above)"); }
  console.log("ok");
} catch (err) {
  for (const [name, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(out, "failure-" + name + ".png") }).catch(() => {});
  }
  console.error(err);
  process.exitCode = 1;
} finally {
  stdin.close();
  await browser.close();
}
