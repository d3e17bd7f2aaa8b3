// Drives one short session of the real game in headless Chromium and prints the outcome as one JSON line.
//
//   node --import tsx scripts/e2e-drive.ts <gameUrl> <tokenFile> [--chromium /usr/bin/chromium]
//        [--session 6] [--w 320] [--h 180] [--fps 20] [--screenshot out.png] [--timeout-s 120] [--steer-ms 0]
//
// <gameUrl> serves the built game (e.g. the local stack's web endpoint, which also injects /sd-config.js). The token
// is put into localStorage before the page loads. The script presses Start, holds throttle and some steering, lets
// the timer run out (the game finishes by itself), waits for the upload and prints window.__SD_GAME__.state().
// Exit 0 when the session reached phase "done", 1 otherwise. Needs a Chromium binary (playwright-core downloads none).
//
// --interrupt-upload makes every object-store upload fail (network error) until the game gives up, then reloads the
//                    page and checks that the saved recording (IndexedDB) is uploaded on the next visit.

import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

interface Args {
  url: string;
  tokenFile: string;
  chromium: string;
  session: number;
  w: number;
  h: number;
  fps: number;
  screenshot: string | null;
  timeoutS: number;
  /** How long to hold D (steer right) a third of the way in; 0 = drive straight. */
  steerMs: number;
  interruptUpload: boolean;
}

const FLAGS = new Set(["interrupt-upload"]);

function parse(argv: string[]): Args {
  const pos: string[] = [];
  const opts: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("--") && FLAGS.has(a.slice(2))) opts[a.slice(2)] = "1";
    else if (a.startsWith("--")) opts[a.slice(2)] = argv[++i] ?? "";
    else pos.push(a);
  }
  if (pos.length !== 2) {
    console.error("usage: node --import tsx scripts/e2e-drive.ts <gameUrl> <tokenFile> [--chromium PATH] [--session S] [--w W] [--h H] [--fps F] [--screenshot PNG]");
    process.exit(2);
  }
  return {
    url: pos[0]!,
    tokenFile: pos[1]!,
    chromium: opts.chromium ?? process.env.CHROMIUM ?? "/usr/bin/chromium",
    session: Number(opts.session ?? 6),
    w: Number(opts.w ?? 320),
    h: Number(opts.h ?? 180),
    fps: Number(opts.fps ?? 20),
    screenshot: opts.screenshot ?? null,
    timeoutS: Number(opts["timeout-s"] ?? 120),
    steerMs: Number(opts["steer-ms"] ?? 0),
    interruptUpload: opts["interrupt-upload"] === "1",
  };
}

async function main() {
  const args = parse(process.argv.slice(2));
  const token = readFileSync(args.tokenFile, "utf8").trim();
  const browser = await chromium.launch({
    executablePath: args.chromium,
    args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--autoplay-policy=no-user-gesture-required"],
  });
  const logs: string[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
    await page.addInitScript((t) => localStorage.setItem("sd.token", t), token);
    let blockUploads = args.interruptUpload;
    if (args.interruptUpload) {
      // Object-store uploads are the POST/PUT requests that are not gRPC-Web calls.
      await page.route(
        (u) => !u.pathname.includes("scalediffusion.v1."),
        (route) => {
          const m = route.request().method();
          if (blockUploads && (m === "POST" || m === "PUT")) return route.abort("failed");
          return route.fallback();
        },
      );
    }
    const url = new URL(args.url);
    url.searchParams.set("session", String(args.session));
    url.searchParams.set("w", String(args.w));
    url.searchParams.set("h", String(args.h));
    url.searchParams.set("fps", String(args.fps));
    await page.goto(url.toString());
    const state = () => page.evaluate(() => window.__SD_GAME__?.state());
    const deadline = Date.now() + args.timeoutS * 1000;
    const waitFor = async (phases: string[]) => {
      for (;;) {
        const s = await state();
        if (s && phases.includes(s.phase)) return s;
        if (s?.phase === "error") return s;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${phases.join("/")}; last state ${JSON.stringify(s)}`);
        await page.waitForTimeout(200);
      }
    };
    let s = await waitFor(["ready"]);
    if (s.phase !== "ready") throw new Error(`game not ready: ${JSON.stringify(s)}`);
    await page.getByTestId("start").click();
    s = await waitFor(["driving"]);
    await page.locator("body").click({ position: { x: 5, y: 5 } });
    await page.keyboard.down("KeyW");
    await page.waitForTimeout((args.session * 1000) / 3);
    if (args.steerMs > 0) {
      await page.keyboard.down("KeyD");
      await page.waitForTimeout(args.steerMs);
      await page.keyboard.up("KeyD");
    }
    const mid = await state();
    if (args.screenshot) await page.locator("[data-testid=game]").screenshot({ path: args.screenshot });
    if (args.interruptUpload) {
      await page.keyboard.up("KeyW");
      const failed = await waitFor(["done"]);
      blockUploads = false;
      const saved = failed.pending;
      await page.reload();
      let resumed = "";
      for (;;) {
        resumed = (await page.getByTestId("pending-message").textContent().catch(() => null)) ?? "";
        if (/Uploaded \d+ of \d+/.test(resumed)) break;
        if (Date.now() > deadline) throw new Error(`the saved recording was not resumed; last message ${JSON.stringify(resumed)}`);
        await page.waitForTimeout(300);
      }
      await page.waitForTimeout(3500); // the saved-recordings list refreshes every 3 s
      const after = await state();
      const ok = failed.phase === "error" && saved >= 1 && /Uploaded 1 of 1/.test(resumed) && after?.pending === 0;
      console.log(JSON.stringify({ ok, failed, savedBeforeReload: saved, resumed, after, logs: logs.slice(-20) }));
      process.exitCode = ok ? 0 : 1;
      return;
    }
    s = await waitFor(["done"]);
    await page.keyboard.up("KeyW");
    console.log(JSON.stringify({ ok: s.phase === "done", state: s, mid, logs: logs.slice(-20) }));
    process.exitCode = s.phase === "done" ? 0 : 1;
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.log(JSON.stringify({ ok: false, error: err instanceof Error ? err.message : String(err) }));
  process.exitCode = 1;
});
