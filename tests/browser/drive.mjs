// Drives Debian's Chromium (through playwright-core) for shoal's browser
// tests; crates/cli/tests/browser_handoff.rs runs it and checks what it
// prints (one JSON line) against the agent and the publisher's server.
//
//   node drive.mjs click PAGE_URL SAVE_AS [LINK_SELECTOR]
//     opens a publisher's download page, clicks its download link (the
//     one LINK_SELECTOR picks, by default the first hand-off link), saves
//     the download to SAVE_AS; prints where it came from and which way
//     shoal.js went.
//   node drive.mjs ui UI_URL RELEASE_NAME UPLOAD_KIB [SCREENSHOT.png]
//     opens the agent's web UI, waits for the release to be listed, sets
//     the upload limit through the settings form and pins the release;
//     prints the address bar.
//
// Every wait is bounded (STEP_TIMEOUT_MS); the test bounds the process too.

import { chromium } from "playwright-core";

const STEP_TIMEOUT_MS = 60_000;

// The flags this machine's headless Chromium needs: no sandbox as root, no
// GPU, and none of the background traffic to Google's hosts that a closed
// network answers with errors.
const CHROMIUM_ARGS = [
  "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

async function withBrowser(body) {
  // launch() gives every run a fresh, empty profile of its own.
  const browser = await chromium.launch({
    executablePath: process.env.SHOAL_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    chromiumSandbox: false,
    args: CHROMIUM_ARGS,
    timeout: STEP_TIMEOUT_MS,
  });
  try {
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const console = [];
    page.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console.push(`pageerror: ${e.message}`));
    const result = await body(page);
    result.console = console;
    return result;
  } finally {
    await browser.close();
  }
}

async function click(pageUrl, saveAs, linkSelector) {
  return withBrowser(async (page) => {
    // What shoal.js decided, from its `shoal:handoff` event.
    await page.addInitScript(() => {
      document.addEventListener("shoal:handoff", (e) => { window.__shoalHandoff = e.detail; });
    });
    const handoffs = [];
    page.on("request", (r) => {
      if (r.url().includes("/v1/handoff")) handoffs.push({ url: r.url(), method: r.method() });
    });
    page.on("requestfailed", (r) => {
      const seen = handoffs.find((h) => h.url === r.url());
      if (seen) seen.failure = r.failure() && r.failure().errorText;
    });
    page.on("response", (r) => {
      const seen = handoffs.find((h) => h.url === r.url());
      if (seen) seen.status = r.status();
    });
    await page.goto(pageUrl);
    // The download starts from shoal.js's navigation, after the hand-off
    // was answered (or failed); its event may come just after.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.locator(linkSelector || "a[data-shoal-torrent]").first().click(),
    ]);
    await download.saveAs(saveAs);
    const failure = await download.failure();
    await page.waitForFunction(() => window.__shoalHandoff !== undefined);
    return {
      download_url: download.url(),
      suggested_filename: download.suggestedFilename(),
      failure,
      handoff: await page.evaluate(() => window.__shoalHandoff),
      handoff_requests: handoffs,
    };
  });
}

async function ui(uiUrl, releaseName, uploadKib, screenshot) {
  return withBrowser(async (page) => {
    await page.setViewportSize({ width: 1180, height: 760 });
    await page.goto(uiUrl);
    const row = page.locator("article.release", { hasText: releaseName });
    await row.waitFor();
    const addressAfterLoad = page.url();
    const tokenStored = await page.evaluate(() => localStorage.getItem("shoal-token") !== null);
    await page.fill("#max-upload", String(uploadKib));
    await page.click("#settings-save");
    await page.locator("#settings-status", { hasText: "Saved" }).waitFor();
    // Pin the release from its row; the row says so once the agent did.
    await row.getByRole("button", { name: "Pin", exact: true }).click();
    await row.locator(".pin", { hasText: "pinned" }).waitFor();
    if (screenshot) {
      // Let the progress bars finish their transition before the picture.
      await page.waitForTimeout(1200);
      await page.screenshot({ path: screenshot, fullPage: true });
    }
    return {
      address: addressAfterLoad,
      token_stored: tokenStored,
      listed: await page.locator("article.release .name").allTextContents(),
      error: await page.locator("#error.shown").count() ? await page.textContent("#error-text") : null,
    };
  });
}

const [command, ...args] = process.argv.slice(2);
const commands = { click, ui };
if (!commands[command]) {
  console.error("usage: node drive.mjs click PAGE_URL SAVE_AS [LINK_SELECTOR] | " +
    "ui UI_URL NAME UPLOAD_KIB [PNG]");
  process.exit(2);
}
try {
  const result = await commands[command](...args);
  console.log(JSON.stringify({ ok: true, ...result }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error && error.stack || error) }));
  process.exit(1);
}
