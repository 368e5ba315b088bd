// Issue 14's supervisor and security desk in Chromium: the campaign form
// with a suspended operator and French hours, the contact list (a
// callback reassigned), the recordings page (the player is not reset by a
// comment, the list stays beside it), approving every proposal but one's
// own, the French audit log and the listening sessions. Started by
// supervisor_test.go, which seeds the data and checks the store after.
//
//   BASE_URL=http://127.0.0.1:PORT ARTIFACTS=dir PASSWORD=... node supervisor.mjs
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
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
  timezoneId: "Europe/Paris",
  args: [
    // HTTPS: Chromium trusts the test server's key (its SPKI pin), not
    // every certificate.
    ...(process.env.SPKI ? ["--ignore-certificate-errors-spki-list=" + process.env.SPKI] : []),
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
});
const page = ctx.pages()[0] || (await ctx.newPage());
page.setDefaultTimeout(30000);
page.on("dialog", (d) => d.accept());
const shot = (name) => page.screenshot({ path: join(out, name + ".png"), fullPage: false });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
async function axe(name) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
  }));
  expect(res.passes.length > 10, "axe-core ran no rule on " + name);
  const bad = res.violations.map((v) => v.id + " (" + v.nodes.map((n) => n.target.join(" ")).join(", ") + ")");
  expect(bad.length === 0, "axe-core, " + name + ": " + bad.join("; "));
}
async function login(ext) {
  await page.goto(base + "/login");
  await page.getByLabel("Identifiant (numéro de poste)").fill(ext);
  await page.getByLabel("Mot de passe").fill(password);
  await page.getByRole("button", { name: "Se connecter" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
}
const active = () => page.evaluate(() => document.activeElement && document.activeElement.id);
async function logout() {
  await page.getByRole("button", { name: "Se déconnecter" }).click();
  await page.waitForURL(/\/login/);
}

try {
  step("supervisor: the wallboard shows real states");
  await login("201");
  await page.goto(base + "/supervisor");
  const row = (ext) => page.locator('#wallboard tr[data-ext="' + ext + '"] .wstate');
  await row("101").filter({ hasText: "disponible" }).waitFor();
  expect((await row("102").innerText()).includes("compte suspendu"), "102 suspended");
  expect((await row("103").innerText()).includes("téléphone éteint"), "103 phone off");
  await shot("wallboard-1366");
  await axe("wallboard");

  step("supervisor: a new campaign starts with the site's hours, in French");
  await page.goto(base + "/supervisor/campaigns");
  const hours = await page.locator("#c-windows").inputValue();
  expect(hours === "lun-dim 07:30-19:00", "new campaign hours: " + hours);

  step("supervisor: the suspended operator is listed, ticked, and kept when saving French hours");
  await page.getByRole("link", { name: "ateliers" }).click();
  const box102 = page.locator("#c-op-102");
  expect(await box102.isChecked(), "102 (suspended) ticked");
  expect((await page.locator("label[for=c-op-102]").innerText()).includes("suspendu"), "102 marked suspended");
  await page.locator("#c-windows").fill("lun-ven 07:30-12:00");
  await page.getByRole("button", { name: "Enregistrer" }).click();
  await page.getByRole("status").filter({ hasText: "" }).first().waitFor();
  expect(await page.locator("#c-op-102").isChecked(), "102 still on the campaign");
  expect((await page.locator("#c-windows").inputValue()) === "lun-ven 07:30-12:00", "hours shown back in French");
  await shot("campaign-1366");
  await axe("campaign");

  step("supervisor: the contact list shows the skip and reassigns 102's callback to 101");
  await page.getByRole("link", { name: /Voir les contacts/ }).click();
  const body = await page.locator("main").innerText();
  expect(body.includes("déjà client chez un concurrent"), "skip reason shown");
  await page.locator("select[name=operator]").selectOption("101");
  await page.getByRole("button", { name: "Réattribuer" }).click();
  await page.getByRole("status").filter({ hasText: "Rappel confié au poste 101" }).waitFor();
  await shot("contacts-1366");
  await axe("contacts");

  step("supervisor: corrects Martin's outcome from the contact list and sees the result");
  const martin = page.locator("tbody tr", { hasText: "Bâtiment Martin" });
  expect((await martin.locator("select[name=disposition]").inputValue()) === "interested", "Martin's current outcome preselected");
  await martin.locator("select[name=disposition]").selectOption("not interested");
  await martin.getByRole("button", { name: "Corriger" }).click();
  await page.getByRole("status").filter({ hasText: "Issue corrigée : pas intéressé." }).waitFor();
  const after2 = page.locator("tbody tr", { hasText: "Bâtiment Martin" });
  expect((await after2.locator("select[name=disposition]").inputValue()) === "not interested", "the list shows the corrected outcome");
  await axe("contacts after a correction");

  step("supervisor: recordings — no 0:00 call by default, French number, outcome select");
  await page.goto(base + "/recordings");
  expect((await page.locator("table").innerText()).includes("rendez-vous pris"), "outcome column in French");
  expect((await page.locator("tbody tr").count()) === 1, "the busy call is hidden");
  await page.locator("#f-number").fill("02 40 00 00 07");
  await page.locator("#f-disposition").selectOption({ label: "rendez-vous pris" });
  await page.getByRole("button", { name: "Rechercher" }).click();
  await page.waitForURL(/number=/);
  expect((await page.locator("tbody tr").count()) === 1, "found by the French number and the outcome");
  await page.locator("tbody tr a").first().click();
  await page.waitForURL(/id=rec-rdv/);

  step("supervisor: a comment keeps the player where it is");
  await page.evaluate(async () => {
    const a = document.getElementById("rec-audio");
    a.dataset.mark = "same-element";
    await new Promise((res) => { a.addEventListener("loadedmetadata", res, { once: true }); a.load(); });
    a.currentTime = 12;
    await new Promise((res) => a.addEventListener("seeked", res, { once: true }));
  });
  await page.locator("#c-at").fill("0:12");
  await page.locator("#c-text").fill("Très bonne reformulation du besoin.");
  await page.getByRole("button", { name: "Ajouter le commentaire" }).click();
  await page.locator("#c-status").filter({ hasText: "Commentaire enregistré" }).waitFor();
  const after = await page.evaluate(() => {
    const a = document.getElementById("rec-audio");
    return { mark: a.dataset.mark, t: a.currentTime, comments: document.querySelectorAll(".rec-comments li").length, text: document.getElementById("c-text").value };
  });
  expect(after.mark === "same-element" && Math.abs(after.t - 12) < 0.5, "player kept: " + JSON.stringify(after));
  expect(after.comments === 1 && after.text === "", "comment listed, form cleared: " + JSON.stringify(after));
  const list = await page.locator(".rec-list").boundingBox();
  const player = await page.locator("#player").boundingBox();
  expect(list.x + list.width <= player.x + 1, "the list stays beside the player: " + JSON.stringify({ list, player }));
  await shot("recordings-1366");
  await axe("recordings");
  await logout();

  step("security: the nav counts proposals; select-all and approve-all leave one's own");
  await login("302");
  await page.goto(base + "/security/allowlist");
  expect((await page.locator("nav").innerText()).includes("2 en attente"), "pending count in the nav");
  await page.getByLabel("Tout sélectionner").check();
  const own = page.locator("tbody input[type=checkbox][disabled]");
  expect((await own.count()) === 1 && !(await own.isChecked()), "own row not ticked");
  await shot("allowlist-1366");
  await axe("allowlist");
  await page.getByRole("button", { name: "Approuver toutes les propositions" }).click();
  await page.getByRole("status").filter({ hasText: "1 de vos propres propositions" }).waitFor();

  step("security: a validity end on an approved number — the past refused next to its field, then set");
  const durand = () => page.locator("tbody tr", { hasText: "+33240000007" });
  const vu = durand().locator("input[name=valid_until]");
  await vu.fill("01/01/2020");
  await durand().getByRole("button", { name: "Fixer la fin" }).click();
  await page.waitForLoadState();
  const vErr = durand().locator(".field-error");
  expect((await vErr.innerText()) === "La date de fin de validité est déjà passée.", "past end refused next to the field: " + (await vErr.innerText()));
  const vuAgain = durand().locator("input[name=valid_until]");
  expect((await vuAgain.getAttribute("aria-invalid")) === "true", "the field is marked invalid");
  expect((await vuAgain.inputValue()) === "01/01/2020", "the typed date is kept");
  expect((await active()) === (await vuAgain.getAttribute("id")), "focus on the refused field");
  await shot("allowlist-validity-error");
  await axe("allowlist, validity refused");
  const next = new Date();
  next.setDate(next.getDate() + 30);
  const endFr = String(next.getDate()).padStart(2, "0") + "/" + String(next.getMonth() + 1).padStart(2, "0") + "/" + next.getFullYear();
  await vuAgain.fill(endFr);
  await durand().getByRole("button", { name: "Fixer la fin" }).click();
  await page.getByRole("status").filter({ hasText: "02 40 00 00 07 : autorisé jusqu'au " + endFr + " inclus." }).waitFor();
  expect((await durand().locator(".field-error").count()) === 0, "no error left");

  step("security: the audit log in French, filtered by a label, dates jj/mm/aaaa");
  await page.goto(base + "/security/audit");
  await page.locator("#kind").selectOption({ label: "liste blanche : approbation" });
  const d = new Date();
  const fr = String(d.getDate()).padStart(2, "0") + "/" + String(d.getMonth() + 1).padStart(2, "0") + "/" + d.getFullYear();
  await page.locator("#since").fill(fr);
  await page.getByRole("button", { name: "Rechercher" }).click();
  await page.waitForURL(/kind=allowlist.approve/);
  const audit = await page.locator("table").innerText();
  expect(audit.includes("liste blanche : approbation") && !audit.includes("allowlist.approve"), "labels, no codes");
  await shot("audit-1366");
  await axe("audit");

  step("security: the recording access log shows listening sessions");
  await page.goto(base + "/security/recordings");
  const rows = await page.locator("table.sessions tbody tr").count();
  expect(rows >= 1 && rows <= 3, "sessions, not one row per Range request: " + rows);
  await shot("recordings-security-1366");
  await axe("recordings security");

  console.log("ok");
} catch (err) {
  await shot("supervisor-failure").catch(() => {});
  console.error(err);
  process.exitCode = 1;
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
