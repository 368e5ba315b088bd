// Issue 14's operator loop in Chromium, with the keyboard where the loop
// has shortcuts; then the error pages, an expired session and the admin's
// user management. Started by consoles_test.go, which seeds the data and
// checks the store afterwards.
//
//   BASE_URL=http://127.0.0.1:PORT ARTIFACTS=dir PASSWORD=... node consoles.mjs
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.BASE_URL;
const out = process.env.ARTIFACTS;
// An unknown session id, under the name the server uses on this scheme
// (over HTTPS the __Host- prefix, Secure).
const secure = base.startsWith("https:");
const forgedSession = { name: (secure ? "__Host-" : "") + "plateau_session", value: "expired-or-forged", url: base, secure };
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
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = ctx.pages()[0] || (await ctx.newPage());
page.setDefaultTimeout(30000);
page.on("dialog", (d) => d.accept());
const shot = (name) => page.screenshot({ path: join(out, name + ".png"), fullPage: false });
const active = () => page.evaluate(() => document.activeElement && document.activeElement.id);
// axe runs axe-core (WCAG 2.x A and AA rules) on the page as it is now.
// It is evaluated through the DevTools protocol, which the page's strict
// CSP does not apply to, so the CSP stays as in production.
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

// blur leaves every field, so that the next key is a shortcut.
const blur = () => page.evaluate(() => { document.activeElement && document.activeElement.blur(); });

async function login(ext) {
  await page.getByLabel("Identifiant (numéro de poste)").fill(ext);
  await page.getByLabel("Mot de passe").fill(password);
  await page.getByRole("button", { name: "Se connecter" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
}

// dayAt is a datetime-local value for the site's day +n at hh:00.
function dayAt(n, hh) {
  const d = new Date();
  d.setDate(d.getDate() + n);
  const pad = (x) => String(x).padStart(2, "0");
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(hh) + ":00";
}

try {
  step("operator logs in: the phone and the callbacks");
  await page.goto(base + "/login");
  await login("101");
  expect(page.url().endsWith("/operator"), "operator home: " + page.url());
  const phone = await page.locator("#phone-state").innerText();
  expect(phone === "Téléphone connecté", "phone state in plain words: " + phone);
  const side = await page.locator(".op-side").innerText();
  expect(!/rechargement|transport|UDP/i.test(side), "no reload claim nor transport jargon: " + side);
  await page.locator("#cb-alert").filter({ hasText: "Rappel en retard : Rappel & Fils" }).waitFor();
  expect((await page.locator("#callbacks tr.overdue").count()) === 1, "the overdue callback is highlighted");
  const fits = await page.evaluate(() => {
    const card = document.getElementById("callbacks").closest(".card");
    const table = card.querySelector("table");
    return table.getBoundingClientRect().right <= card.getBoundingClientRect().right + 0.5;
  });
  expect(fits, "the callbacks table fits its card at 1366x768");
  for (const [id, key] of [["btn-next", "S"], ["btn-call", "A"], ["hangup", "R"]]) {
    expect((await page.locator("#" + id).getAttribute("aria-keyshortcuts")) === key, id + " announces its shortcut");
  }
  expect((await page.locator("#op-keys").innerText()).includes("S contact suivant"), "shortcut legend shown");
  await shot("operator-callbacks");
  await axe("operator, callbacks due");

  step("open the callback from the list");
  await page.getByRole("button", { name: /Rappel & Fils/ }).click();
  await page.locator("#pv-company").filter({ hasText: "Rappel & Fils" }).waitFor();
  expect((await page.locator("#pv-number").innerText()) === "02 40 00 00 10", "number the French way");
  expect(await page.locator("#preview-callback").isVisible(), "marked as a promised callback");
  const script = await page.locator(".script-body:not([hidden])").innerText();
  expect(script.includes("Bonjour M. Rappel, je vous appelle pour Rappel & Fils."), "placeholders filled: " + script);
  expect(await page.getByLabel("Nom du décideur").isVisible(), "the script's capture fields are offered");

  step("A calls; notes and answers are typed during the call");
  await blur();
  await page.keyboard.press("a");
  await page.locator("#call-state").filter({ hasText: "En communication · 02 40 00 00 10" }).waitFor();
  const live = await page.evaluate(() => document.getElementById("call-duration").closest("[aria-live],[role=status],[role=alert]"));
  expect(live === null, "the call timer is not in a live region");
  await page.locator("#dispose-notes").fill("Le décideur rappelle lundi.");
  await page.getByLabel("Nom du décideur").fill("M. Roux");
  await page.getByLabel("Courriel du décideur").fill("roux@exemple.fr");
  await shot("operator-incall-1366");
  await axe("operator in a call, notes and answers");
  await page.setViewportSize({ width: 1280, height: 720 });
  await shot("operator-incall-1280");
  await page.setViewportSize({ width: 1366, height: 768 });

  step("R hangs up; the outcome form has nothing chosen");
  await page.locator("#dispose-notes").press("r");
  await page.waitForTimeout(300);
  // The key went to the notes: still in the call.
  expect(await page.locator("#hangup").isVisible(), "R while typing does not hang up");
  await page.locator("#dispose-notes").fill("Le décideur rappelle lundi.");
  await blur();
  await page.keyboard.press("r");
  await page.locator("#dispose-form:not([hidden])").waitFor();
  expect((await page.locator("#disposition").inputValue()) === "", "no outcome pre-selected");
  expect((await page.locator("#dispose-notes").inputValue()) === "Le décideur rappelle lundi.", "notes kept after the call");
  await page.locator("#btn-dispose").focus();
  await page.keyboard.press("Enter");
  const err = await page.locator("#disposition-error").innerText();
  expect(err.includes("Choisissez d'abord l'issue"), "Enter with nothing chosen explains: " + err);
  expect((await page.locator("#disposition").getAttribute("aria-invalid")) === "true", "the field is marked invalid");
  await shot("operator-dispose-1366");
  await axe("outcome form with its error");

  step("2 picks « intéressé », Enter saves, focus returns to Contact suivant");
  await blur();
  await page.keyboard.press("2");
  expect((await page.locator("#disposition").inputValue()) === "interested", "key 2 chose the second outcome");
  expect((await active()) === "btn-dispose", "focus on the save button");
  await page.keyboard.press("Enter");
  await page.getByRole("status").filter({ hasText: "Issue enregistrée" }).waitFor();
  expect((await active()) === "btn-next", "focus back on Contact suivant, got " + (await active()));

  step("correct the outcome");
  await page.getByRole("button", { name: "Corriger l'issue" }).click();
  await page.locator("#correct-disposition").selectOption("not interested");
  await page.getByRole("button", { name: "Enregistrer la correction" }).click();
  await page.getByRole("status").filter({ hasText: "Issue corrigée" }).waitFor();

  step("pause (infirmary) with the keyboard: Contact suivant is off, a reload keeps it, « Reprendre » comes back");
  await page.locator("#pause-reason").focus();
  await page.locator("#pause-reason").selectOption("medical");
  await page.keyboard.press("Tab");
  expect((await active()) === "btn-pause", "Tab reaches the pause button, got " + (await active()));
  await page.keyboard.press("Enter");
  await page.locator("#pause-state").filter({ hasText: "En pause (infirmerie) depuis" }).waitFor();
  expect((await active()) === "btn-resume", "focus on Reprendre, got " + (await active()));
  expect(await page.locator("#btn-next").isDisabled(), "Contact suivant disabled while paused");
  await blur();
  await page.keyboard.press("s");
  await page.waitForTimeout(300);
  expect(await page.locator("#preview").isHidden(), "S takes no contact while paused");
  await shot("operator-paused");
  await axe("operator paused");
  await page.reload();
  await page.locator("#pause-state").filter({ hasText: "En pause (infirmerie) depuis" }).waitFor();
  expect(await page.locator("#btn-next").isDisabled(), "still paused after a reload");
  expect((await page.locator("#next-paused").innerText()).includes("Vous êtes en pause (infirmerie)"), "why Contact suivant is off, beside it");
  expect((await page.locator("#btn-next").getAttribute("aria-describedby")) === "next-paused", "the reason describes the disabled button");
  expect(await page.locator("#pause-form").isHidden(), "no second pause form after a reload");
  await page.getByRole("button", { name: "Reprendre" }).focus();
  await page.keyboard.press("Enter");
  await page.locator("#pause-state").filter({ hasText: "Vous êtes disponible." }).waitFor();
  expect(!(await page.locator("#btn-next").isDisabled()), "Contact suivant enabled after Reprendre");
  expect(await page.locator("#next-paused").isHidden(), "no pause notice after Reprendre");
  expect((await active()) === "btn-next", "focus back on Contact suivant, got " + (await active()));

  step("S: the next contact; a callback outside the hours is refused next to its field");
  await page.locator("#btn-next").focus();
  await page.keyboard.press("s");
  await page.locator("#pv-company").filter({ hasText: "Atelier Durand Architectes" }).waitFor();
  expect((await page.locator(".script-body:not([hidden])").innerText()).includes("Bonjour Mme Claire Durand"), "placeholders for this contact");
  await page.getByRole("button", { name: "Rappel", exact: true }).click();
  await page.locator("#callback-at").fill(dayAt(2, 10));
  await page.getByRole("button", { name: "Programmer le rappel" }).click();
  const cbErr = page.locator("#callback-at-error");
  await cbErr.filter({ hasText: "hors des heures d'appel" }).waitFor();
  expect((await cbErr.innerText()).includes("Prochaine possibilité"), "the next possible time is offered: " + (await cbErr.innerText()));
  expect((await page.locator("#callback-at").getAttribute("aria-invalid")) === "true", "callback field marked invalid");
  await page.locator("#callback-at").fill(dayAt(1, 10));
  await page.getByRole("button", { name: "Programmer le rappel" }).click();
  await page.getByRole("status").filter({ hasText: "Rappel programmé" }).waitFor();
  await page.locator("#callbacks").filter({ hasText: "Atelier Durand" }).waitFor();

  step("session expiry keeps the typed notes and returns to the console");
  await page.keyboard.press("s");
  await page.locator("#pv-company").filter({ hasText: "Bâtiment Martin" }).waitFor();
  await page.locator("#dispose-notes").fill("Note tapée avant l'expiration");
  await ctx.addCookies([forgedSession]);
  await page.waitForURL(/\/login\?expired=1/);
  expect((await page.getByRole("status").innerText()).includes("Votre session a expiré"), "the login page says the session expired");
  await shot("login-expired");
  await axe("login after expiry");
  await login("101");
  expect(page.url().endsWith("/operator"), "back on the console: " + page.url());
  await page.getByRole("button", { name: "Contact suivant" }).click();
  await page.locator("#pv-company").filter({ hasText: "Bâtiment Martin" }).waitFor();
  expect((await page.locator("#dispose-notes").inputValue()) === "Note tapée avant l'expiration", "typed notes restored");

  step("nothing left now: the console says when and why");
  await page.getByRole("button", { name: "Passer" }).click();
  await page.getByLabel("Raison").fill("Entreprise fermée pour travaux");
  await page.getByRole("button", { name: "Passer ce contact" }).click();
  await page.getByRole("status").filter({ hasText: "Contact passé" }).waitFor();
  await page.keyboard.press("s");
  const msg = page.getByRole("status").filter({ hasText: "Prochain contact à appeler" });
  await msg.waitFor();
  const m = await msg.innerText();
  expect(m.includes("1 numéro(s) attendent l'approbation de la sécurité"), "awaiting approval explained: " + m);
  await shot("operator-empty");
  await axe("operator, empty queue explained");

  step("404 and 403 pages");
  await page.goto(base + "/nope");
  expect((await page.getByRole("heading", { level: 1 }).innerText()) === "Page introuvable", "404 page");
  await shot("error-404");
  await axe("404 page");
  await page.getByRole("link", { name: "Retour à ma page" }).click();
  await page.waitForURL(/\/operator$/);
  await page.goto(base + "/admin/users");
  expect((await page.getByRole("heading", { level: 1 }).innerText()) === "Accès refusé", "403 page");
  await page.getByRole("button", { name: "Se déconnecter" }).click();
  await page.waitForURL(/\/login/);

  step("supervisor: a script typed when the session expires is not lost");
  await login("201");
  await page.goto(base + "/supervisor/campaigns");
  const draft = "# Accroche\nBonjour {interlocuteur}, texte tapé avant l'expiration.";
  await page.locator("form textarea[name=script]").first().fill(draft);
  await page.locator("form input[name=name]").first().fill("nouvelle");
  await ctx.addCookies([forgedSession]);
  await page.getByRole("button", { name: "Créer la campagne (brouillon)" }).click();
  await page.waitForURL(/\/login\?.*expired=1/);
  expect((await page.getByRole("status").innerText()).includes("Votre session a expiré"), "expired notice");
  await login("201");
  expect(page.url().endsWith("/supervisor/campaigns"), "back on the campaigns page: " + page.url());
  expect((await page.locator("form textarea[name=script]").first().inputValue()) === draft, "the typed script is back");
  await page.getByRole("button", { name: "Se déconnecter" }).click();
  await page.waitForURL(/\/login/);

  step("admin: add a user, change nothing without a reason, suspend with one");
  await login("401");
  await page.getByLabel("Poste (identifiant)").fill("107");
  await page.getByLabel("Nom", { exact: true }).fill("Nouvelle Superviseure");
  await page.locator("#new-role").selectOption("supervisor");
  await page.getByLabel("Mot de passe web", { exact: true }).fill("nouveau-mdp-107");
  await page.getByRole("button", { name: "Ajouter", exact: true }).click();
  await page.getByRole("status").filter({ hasText: "Poste 107 ajouté" }).waitFor();
  await page.getByLabel("Motif de la suspension du poste 101").fill("Changement d'atelier");
  await page.getByRole("button", { name: "Suspendre le poste 101" }).click();
  await page.getByRole("status").filter({ hasText: "Poste 101 suspendu" }).waitFor();
  await page.locator("details.manage").first().evaluate((d) => { d.open = true; });
  await shot("admin-users-manage");
  await axe("admin users");

  console.log("ok");
} catch (err) {
  await shot("consoles-failure").catch(() => {});
  console.error(err);
  process.exitCode = 1;
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
