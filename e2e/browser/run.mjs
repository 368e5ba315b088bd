// Drives Debian's Chromium through the consoles, as real users with the
// keyboard and mouse, and saves a screenshot of each console. Started by
// browser_test.go, which seeds the data and checks the store afterwards.
//
//   BASE_URL=http://127.0.0.1:PORT ARTIFACTS=dir PASSWORD=... node run.mjs
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.BASE_URL;
const out = process.env.ARTIFACTS;
const password = process.env.PASSWORD;
const step = (msg) => console.log("step: " + msg);

function expect(cond, msg) {
  if (!cond) throw new Error("expectation failed: " + msg);
}

const profile = mkdtempSync(join(tmpdir(), "plateau-chromium-"));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1366, height: 768 },
  locale: "fr-FR",
  args: [
    // HTTPS: Chromium trusts the test server's key (its SPKI pin), not
    // every certificate.
    ...(process.env.SPKI ? ["--ignore-certificate-errors-spki-list=" + process.env.SPKI] : []),
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = ctx.pages()[0] || (await ctx.newPage());
page.setDefaultTimeout(30000);
const shot = (name) => page.screenshot({ path: join(out, name + ".png"), fullPage: false });

// Any request that leaves the server is a bug: the centre has no internet.
page.on("request", (req) => {
  if (!req.url().startsWith(base) && !req.url().startsWith("data:")) {
    throw new Error("request outside the server: " + req.url());
  }
});

async function login(ext, keyboard) {
  await page.goto(base + "/login");
  if (keyboard) {
    // The username field takes focus by itself (autofocus), but Chromium
    // applies autofocus at its next rendering update, which on a loaded
    // machine comes after the load event: keys typed before it are lost.
    await page.waitForFunction(() => document.activeElement?.id === "username");
    await page.keyboard.type(ext);
    await page.keyboard.press("Tab");
    await page.keyboard.type(password);
    await page.keyboard.press("Enter");
  } else {
    await page.getByLabel("Identifiant (numéro de poste)").fill(ext);
    await page.getByLabel("Mot de passe").fill(password);
    await page.getByRole("button", { name: "Se connecter" }).click();
  }
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
}

async function logout() {
  await page.getByRole("button", { name: "Se déconnecter" }).click();
  await page.waitForURL(/\/login/);
}

try {
  step("login page");
  await page.goto(base + "/login");
  expect((await page.locator("html").getAttribute("lang")) === "fr", "French by default");
  await shot("login");

  step("security officer logs in with the keyboard");
  await login("302", true);
  expect(page.url().endsWith("/security/allowlist"), "security home: " + page.url());

  step("approve a number proposed by someone else");
  await page.getByRole("button", { name: "Approuver +33240000001" }).click();
  await page.waitForLoadState("load");
  expect(await page.getByRole("status").filter({ hasText: "1 numéro(s) approuvé(s)" }).count() === 1, "approval flash");

  step("the officer cannot approve their own proposal");
  expect((await page.getByRole("button", { name: "Approuver +33240000003" }).count()) === 0, "no approve button on one's own row");
  const ownBox = page.getByLabel("+33240000003 : votre proposition, un autre agent doit la décider");
  expect((await ownBox.isDisabled()) && !(await ownBox.isChecked()), "own row cannot be ticked");
  await shot("security-allowlist");

  step("audit log");
  await page.getByRole("link", { name: "Journal d'audit" }).click();
  await page.waitForURL(/\/security\/audit/);
  expect((await page.locator(".verify.ok").count()) === 1, "audit chain shown intact");
  await page.getByLabel("Type").selectOption("allowlist.approve");
  await page.getByRole("button", { name: "Rechercher" }).click();
  await page.waitForURL(/kind=allowlist.approve/);
  await shot("security-audit");

  step("refused calls");
  await page.getByRole("link", { name: "Appels refusés" }).click();
  await page.waitForURL(/\/security\/refused/);
  expect((await page.getByText("numéro non autorisé").count()) >= 1, "refused call listed");
  await shot("security-refused");

  step("policy simulator: Monday at 07:29");
  await page.getByRole("link", { name: "Simulateur de règles" }).click();
  await page.getByLabel("Poste (téléopérateur)").fill("101");
  await page.getByLabel("Numéro", { exact: true }).fill("02 40 00 00 01");
  // Next Monday: the approval is valid from today on.
  const monday = new Date();
  do { monday.setDate(monday.getDate() + 1); } while (monday.getDay() !== 1);
  const pad = (n) => String(n).padStart(2, "0");
  await page.getByLabel("Date").fill(monday.getFullYear() + "-" + pad(monday.getMonth() + 1) + "-" + pad(monday.getDate()));
  await page.getByLabel("Heure").fill("07:29:00");
  await page.getByRole("button", { name: "Simuler" }).click();
  await page.waitForLoadState("load");
  const result = await page.locator("section.result").innerText();
  expect(result.includes("Appel refusé") && result.includes("hors des heures d'appel") && !result.includes("OUTSIDE_WINDOW"), "simulator answer in French, no raw code: " + result);
  await shot("security-simulator");
  await logout();

  step("supervisor: live wallboard");
  await login("201", false);
  expect(page.url().endsWith("/supervisor"), "supervisor home");
  await page.waitForFunction(() => document.getElementById("updated").textContent !== "");
  const rows = await page.locator("#wallboard tbody tr").count();
  expect(rows === 2, "two operators listed, got " + rows);
  const board = await page.locator("#wallboard").innerText();
  expect(board.includes("Téléphone connecté"), "registration state shown");
  expect(board.includes("en communication") && board.includes("menuiseries"), "102's call is live: " + board);
  expect(/\b\d+:\d\d\b/.test(board), "the call's duration is shown: " + board);

  step("supervisor: listen to 102's call");
  await page.getByRole("button", { name: "Écouter l'appel du poste 102" }).click();
  await page.getByRole("status").filter({ hasText: "Votre téléphone sonne" }).waitFor();
  await shot("supervisor");

  step("supervisor: campaigns");
  await page.getByRole("link", { name: "Campagnes", exact: true }).click();
  await page.waitForURL(/\/supervisor\/campaigns$/);
  expect((await page.getByRole("link", { name: "menuiseries" }).count()) === 1, "campaign listed");
  await shot("supervisor-campaigns");
  await page.getByRole("link", { name: "menuiseries" }).click();
  await page.waitForURL(/\/supervisor\/campaigns\/\d+$/);
  expect((await page.getByRole("button", { name: "Mettre en pause" }).count()) === 1, "pause offered for an active campaign");
  await shot("supervisor-campaign");
  await logout();

  step("operator desk");
  await login("101", false);
  expect(page.url().endsWith("/operator"), "operator home");
  expect((await page.getByRole("link", { name: "Journal d'audit" }).count()) === 0, "no security link for an operator");
  await shot("operator");

  step("operator: preview the next contact with the script");
  await page.getByRole("button", { name: "Contact suivant" }).click();
  await page.locator("#pv-company").filter({ hasText: "Atelier Durand Architectes" }).waitFor();
  expect((await page.locator("#pv-number").innerText()) === "02 40 00 00 07", "number shown the French way");
  expect((await page.locator(".script-body:not([hidden]) strong").first().innerText()) === "téléconseiller", "script rendered from Markdown");
  expect(await page.getByRole("button", { name: "Appeler" }).isEnabled(), "Call enabled: the phone is registered");
  await shot("operator-preview");

  step("operator: call, then the outcome");
  await page.getByRole("button", { name: "Appeler" }).click();
  await page.locator("#dispose-form:not([hidden])").waitFor();
  expect(await page.getByRole("button", { name: "Contact suivant" }).isDisabled(), "next blocked until the outcome is entered");
  await page.getByLabel("Issue", { exact: true }).selectOption("interested");
  await page.locator("#dispose-notes").fill("Rappeler pour un devis en janvier.");
  await page.locator("#dispose-outcome").filter({ hasText: "décroché" }).waitFor();
  await shot("operator-dispose");
  await page.getByRole("button", { name: "Enregistrer l'issue" }).click();
  await page.getByRole("status").filter({ hasText: "Issue enregistrée" }).waitFor();
  await logout();

  step("admin users, in English");
  await login("401", false);
  await page.goto(base + "/admin/users?lang=en");
  expect((await page.getByRole("heading", { level: 1 }).innerText()) === "Users", "English on request");
  await shot("admin-users-en");
  await page.goto(base + "/admin/users?lang=fr");

  console.log("ok");
} catch (err) {
  await shot("failure").catch(() => {});
  console.error(err);
  process.exitCode = 1;
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
