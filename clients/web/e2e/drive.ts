// A scripted drive of the real game in headless Chromium, for the end-to-end test (tests/e2e/test_game_browser.py):
//
//   node_modules/.bin/tsx e2e/drive.ts <gameUrl> <token> <outDir> [seconds=12]
//   env: SD_DRIVE_RECORDER=auto|webcodecs|mediarecorder, SD_DRIVE_STAMP=on, SD_DRIVE_DIFFUSION=on (the game's
//   ?rec=, ?stamp= and ?diffusion=; diffusion is off by default), SD_DRIVE_SIZE=WxH (default 640x360)
//
// Loads the game (served with its /sd-config.js, e.g. by the local stack), signs in with <token> (localStorage),
// starts a <seconds>-long session at 640x360@20 fps (SD_DRIVE_SIZE) and drives it closed-loop from window.__SD_GAME__.state():
// up the road at ~9 m/s, then a RIGHT turn into the cross street at the next intersection (right steer only, never
// left; coasting at that speed the speed-dependent steering limit makes it a ~2 s turn of radius ~12 m, started so that
// the car ends up near the street's centre line, clear of the parked cars), then brakes to a stop and holds the
// brake; the timer ends the session and the game uploads it.
// Saves <outDir>/game-driving.png (during the turn) and <outDir>/game-result.png, and prints one JSON line:
//   {"ok": true, "sessionId": "...", "sessionState": "UPLOADED", "turned": true, ...}
// Exit 0 when the session was uploaded, 1 otherwise. Chromium: $CHROMIUM or `chromium` on PATH.

import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Page } from "playwright-core";
import type { GameHookState } from "../src/game/hook";
import { DEFAULT_PARAMS, maxSteerAngle } from "../src/sim/vehicle";

const CRUISE = 9; // m/s on the approach (the turn is coasted: throttle would widen it)

/** Distance before the intersection's centre at which to start a full-lock right turn at speed v. */
function turnStart(v: number): number {
  const radius = DEFAULT_PARAMS.wheelbaseM / Math.tan(maxSteerAngle(Math.max(v, 1)));
  return radius + 0.22 * v; // + the distance covered while the steering ramps up
}

function findChromium(): string {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
      const p = path.join(dir, name);
      if (existsSync(p)) return p;
    }
  }
  throw new Error("no Chromium found: set CHROMIUM or put chromium on PATH");
}

class Keys {
  private down = new Set<string>();
  constructor(private readonly page: Page) {}
  async set(code: string, on: boolean): Promise<void> {
    if (on === this.down.has(code)) return;
    if (on) {
      this.down.add(code);
      await this.page.keyboard.down(code);
    } else {
      this.down.delete(code);
      await this.page.keyboard.up(code);
    }
  }
  async releaseAll(): Promise<void> {
    for (const k of [...this.down]) await this.set(k, false);
  }
}

const angleDiff = (a: number, b: number) => Math.atan2(Math.sin(a - b), Math.cos(a - b));

async function main(): Promise<number> {
  const [url, token, outDir, secondsArg] = process.argv.slice(2);
  if (!url || !token || !outDir) {
    console.error("usage: tsx e2e/drive.ts <gameUrl> <token> <outDir> [seconds=12]");
    return 2;
  }
  const seconds = Number(secondsArg ?? 12);
  mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: findChromium(),
    args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"],
  });
  const logs: string[] = [];
  const result: Record<string, unknown> = { ok: false };
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 820 } });
    page.on("console", (m) => m.type() === "error" && logs.push(m.text()));
    page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
    await page.addInitScript((t) => localStorage.setItem("sd.token", t), token);
    const game = new URL(url);
    game.searchParams.set("session", String(seconds));
    const [w, h] = (process.env.SD_DRIVE_SIZE ?? "640x360").split("x");
    game.searchParams.set("w", w ?? "640");
    game.searchParams.set("h", h ?? "360");
    game.searchParams.set("fps", "20");
    // Diffusion off unless SD_DRIVE_DIFFUSION=on: then the recording holds the frames the diffusion service
    // repainted (each stamped, with ?stamp=on, with the time of the state that was sent for repainting).
    game.searchParams.set("diffusion", process.env.SD_DRIVE_DIFFUSION === "on" ? "on" : "off");
    // Which recorder (auto by default) and the render-time stamp the test reads back from the processor's frames.
    if (process.env.SD_DRIVE_RECORDER) game.searchParams.set("rec", process.env.SD_DRIVE_RECORDER);
    if (process.env.SD_DRIVE_STAMP) game.searchParams.set("stamp", process.env.SD_DRIVE_STAMP);
    await page.goto(game.toString());
    const state = async () => (await page.evaluate(() => window.__SD_GAME__?.state() ?? null)) as GameHookState | null;
    const deadline = Date.now() + (seconds + 150) * 1000;
    const until = async (ok: (s: GameHookState) => boolean, what: string) => {
      for (;;) {
        const s = await state();
        if (s !== null && ok(s)) return s;
        if (s?.phase === "error") throw new Error(`the game failed: ${s.error}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last state ${JSON.stringify(s)}`);
        await page.waitForTimeout(100);
      }
    };

    await until((s) => s.phase === "ready", "the game to be ready");
    // SD_DRIVE_TRACE=file.json: Chrome's tracing of the drive (where the browser's time goes; see services/diffusion/README.md).
    const trace = process.env.SD_DRIVE_TRACE;
    if (trace) await browser.startTracing(page, { path: trace, categories: ["toplevel", "gpu", "viz", "cc", "media", "blink", "disabled-by-default-devtools.timeline"] });
    await page.getByTestId("start").click();
    let s = await until((x) => x.phase === "driving" && x.vehicle !== null, "driving");
    const keys = new Keys(page);
    const heading0 = s.vehicle!.theta;
    const target = s.nav?.nextIntersection ?? null;
    let stage: "approach" | "turn" | "exit" = "approach";
    let shot = false;
    let turned = false;
    while (s.phase === "driving") {
      const v = s.vehicle!;
      if (target !== null && stage === "approach") {
        const ahead = (target.x - v.x) * Math.cos(heading0) + (target.y - v.y) * Math.sin(heading0);
        if (ahead <= turnStart(v.speed)) {
          stage = "turn";
          await keys.set("KeyW", false);
          await keys.set("KeyD", true);
        } else {
          await keys.set("KeyW", v.speed < CRUISE - 0.3);
        }
      } else if (stage === "turn") {
        // Turned right by ~80 degrees: let go; the steering springs back and the car ends up along the street.
        if (-angleDiff(v.theta, heading0) >= Math.PI / 2 - 0.17) {
          await keys.set("KeyD", false);
          stage = "exit";
          turned = true;
        }
        if (!shot) {
          await page.getByTestId("game").screenshot({ path: path.join(outDir, "game-driving.png") });
          shot = true;
        }
      } else if (stage === "exit") {
        // Brake to a stop and hold the brake until the timer ends the session, as a driver waiting would (a car
        // left with no input is an AFK stretch the processor rightly rejects; driving on risks a crash, whose
        // instant stop CLEAN rejects as implausible motion).
        await keys.set("KeyS", true);
      } else {
        await keys.set("KeyW", v.speed < CRUISE - 0.3);
      }
      await page.waitForTimeout(30);
      s = (await state())!;
    }
    await keys.releaseAll();
    if (trace) await browser.stopTracing();
    if (!shot) await page.getByTestId("game").screenshot({ path: path.join(outDir, "game-driving.png") });
    s = await until((x) => x.phase === "done", "the upload");
    await page.getByTestId("game").screenshot({ path: path.join(outDir, "game-result.png") });
    Object.assign(result, {
      ok: true,
      sessionId: s.sessionId,
      sessionState: s.sessionState,
      worldId: s.worldId,
      ticks: s.ticks,
      videoBytes: s.videoBytes,
      recorder: s.recorder,
      framesRecorded: s.framesRecorded,
      framesSkipped: s.framesSkipped,
      renderFps: s.renderFps,
      turned,
      diffusion: s.diffusion,
      diffusionFrames: s.diffusionFrames,
      diffusionRttMs: s.diffusionRttMs,
      repaintedShown: s.repaintedShown,
      renders: s.renders,
      elapsedS: s.elapsedS,
      diffusionSize: s.diffusionSize,
      diffusionSent: s.diffusionSent,
      diffusionDropped: s.diffusionDropped,
      diffusionAdvisedFps: s.diffusionAdvisedFps,
      repaintedPerS: s.elapsedS > 0 ? Math.round((s.repaintedShown / s.elapsedS) * 100) / 100 : 0,
    });
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
  } finally {
    result.logs = logs.slice(-10);
    await browser.close();
  }
  console.log(JSON.stringify(result));
  return result.ok ? 0 : 1;
}

process.exitCode = await main();
