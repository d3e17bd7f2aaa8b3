import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_CONFIG, DEFAULT_GAME_CONFIG, displaySize, parseBaseUrl, resolveConfig, resolveGameConfig } from "./config";

describe("resolveConfig", () => {
  it("falls back to the defaults when nothing is set", () => {
    expect(resolveConfig()).toEqual({
      ingestUrl: "http://127.0.0.1:8080",
      diffusionUrl: "http://127.0.0.1:8081",
      trainerUrl: "http://127.0.0.1:8083",
    });
    expect(resolveConfig({ env: {}, runtime: undefined })).toEqual(DEFAULT_CONFIG);
    expect(resolveConfig({ env: {}, runtime: null })).toEqual(DEFAULT_CONFIG);
  });

  it("uses window.__SD_CONFIG__ over the defaults, per key", () => {
    const cfg = resolveConfig({ runtime: { ingestUrl: "http://ingest.local:9000" } });
    expect(cfg.ingestUrl).toBe("http://ingest.local:9000");
    expect(cfg.diffusionUrl).toBe(DEFAULT_CONFIG.diffusionUrl);
    expect(cfg.trainerUrl).toBe(DEFAULT_CONFIG.trainerUrl);
  });

  it("uses Vite env over window.__SD_CONFIG__", () => {
    const cfg = resolveConfig({
      env: { VITE_INGEST_URL: "https://ingest.example.com", VITE_TRAINER_URL: "" },
      runtime: {
        ingestUrl: "http://runtime-ingest:1",
        diffusionUrl: "http://runtime-diffusion:2",
        trainerUrl: "http://runtime-trainer:3",
      },
    });
    expect(cfg).toEqual({
      ingestUrl: "https://ingest.example.com",
      diffusionUrl: "http://runtime-diffusion:2",
      // An empty env var counts as unset.
      trainerUrl: "http://runtime-trainer:3",
    });
  });

  it("ignores unrelated env keys and normalises trailing slashes", () => {
    const cfg = resolveConfig({
      env: { MODE: "production", DEV: false, VITE_DIFFUSION_URL: " http://gpu:8081/api/ " },
    });
    expect(cfg.diffusionUrl).toBe("http://gpu:8081/api");
    expect(resolveConfig({ runtime: { trainerUrl: "http://t:8083/" } }).trainerUrl).toBe("http://t:8083");
  });

  it("rejects a malformed URL with an error naming the setting and its source", () => {
    expect(() => resolveConfig({ env: { VITE_INGEST_URL: "not a url" } })).toThrow(ConfigError);
    expect(() => resolveConfig({ env: { VITE_INGEST_URL: "not a url" } })).toThrow(
      /Invalid ingestUrl \(from VITE_INGEST_URL\): "not a url" is not an absolute URL/,
    );
    // A missing scheme: either unparseable or parsed with the host as the scheme.
    expect(() => resolveConfig({ runtime: { diffusionUrl: "127.0.0.1:8081" } })).toThrow(
      /Invalid diffusionUrl \(from window\.__SD_CONFIG__\.diffusionUrl\): "127\.0\.0\.1:8081" is not an absolute URL/,
    );
    expect(() => resolveConfig({ runtime: { diffusionUrl: "localhost:8081" } })).toThrow(
      /Invalid diffusionUrl \(from window\.__SD_CONFIG__\.diffusionUrl\).*must use http: or https:, not localhost:/,
    );
    expect(() => resolveConfig({ runtime: { trainerUrl: "ftp://host/" } })).toThrow(
      /must use http: or https:, not ftp:/,
    );
    expect(() => resolveConfig({ runtime: { trainerUrl: "http://host:8083/?x=1" } })).toThrow(
      /must not have a query string or fragment/,
    );
  });

  it("does not fall back when a higher-precedence value is malformed", () => {
    expect(() =>
      resolveConfig({
        env: { VITE_TRAINER_URL: "http//missing-colon" },
        runtime: { trainerUrl: "http://fine:8083" },
      }),
    ).toThrow(/trainerUrl \(from VITE_TRAINER_URL\)/);
  });

  it("rejects a runtime config of the wrong shape", () => {
    expect(() => resolveConfig({ runtime: "http://x" })).toThrow(
      /Invalid window\.__SD_CONFIG__: expected an object.*got string/,
    );
    expect(() => resolveConfig({ runtime: [] })).toThrow(/got an array/);
    expect(() => resolveConfig({ runtime: { ingestUrl: 8080 } })).toThrow(
      /Invalid ingestUrl \(from window\.__SD_CONFIG__\.ingestUrl\): expected a string, got number/,
    );
  });
});

describe("parseBaseUrl", () => {
  it("keeps a path prefix", () => {
    expect(parseBaseUrl("https://h.example/grpc/", "ingestUrl", "test")).toBe("https://h.example/grpc");
  });

  it("rejects credentials", () => {
    expect(() => parseBaseUrl("http://u:p@h:1", "ingestUrl", "test")).toThrow(/credentials/);
  });
});

describe("resolveGameConfig", () => {
  it("defaults to a 60 s, 1280x720@30 session with a 60 degree camera and diffusion on", () => {
    expect(resolveGameConfig()).toEqual(DEFAULT_GAME_CONFIG);
    expect(DEFAULT_GAME_CONFIG).toMatchObject({ sessionSeconds: 60, recordWidth: 1280, recordHeight: 720, recordFps: 30, fovDeg: 60, diffusion: true });
  });

  it("takes URL query parameters over window.__SD_CONFIG__", () => {
    const cfg = resolveGameConfig({
      runtime: { sessionSeconds: 30, recordWidth: 800, fovDeg: 75, ingestUrl: "http://x:1" },
      query: "?session=10&w=640&h=360&diffusion=off&world=nyc-sample",
    });
    expect(cfg).toMatchObject({ sessionSeconds: 10, recordWidth: 640, recordHeight: 360, recordFps: 30, fovDeg: 75, diffusion: false, worldId: "nyc-sample" });
  });

  it("rejects bad values in words", () => {
    expect(() => resolveGameConfig({ query: "?w=abc" })).toThrow(/Invalid recordWidth \(from \?w=\): "abc" is not a number/);
    expect(() => resolveGameConfig({ query: "?w=640.5" })).toThrow(/whole number of pixels/);
    expect(() => resolveGameConfig({ runtime: { sessionSeconds: 1000 } })).toThrow(/sessionSeconds \(from window.__SD_CONFIG__.sessionSeconds\): 1000 is outside 2-300 seconds/);
    expect(() => resolveGameConfig({ query: "?diffusion=maybe" })).toThrow(/not on\/off/);
    expect(() => resolveGameConfig({ query: "?world=../x" })).toThrow(/not a world id/);
    expect(() => resolveGameConfig({ query: "?rec=ffmpeg" })).toThrow(/Invalid recorder \(from \?rec=\): "ffmpeg" is not one of auto, webcodecs, mediarecorder/);
  });

  it("chooses the recorder and the test stamp", () => {
    expect(DEFAULT_GAME_CONFIG).toMatchObject({ recorder: "auto", stamp: false });
    expect(resolveGameConfig({ query: "?rec=MediaRecorder&stamp=on" })).toMatchObject({ recorder: "mediarecorder", stamp: true });
    expect(resolveGameConfig({ runtime: { recorder: "webcodecs" } }).recorder).toBe("webcodecs");
  });
});

describe("displaySize", () => {
  it("draws at most 640 wide while diffusion is on, aspect kept; the configured size otherwise", () => {
    expect(displaySize({ recordWidth: 1280, recordHeight: 720 }, true)).toEqual({ width: 640, height: 360 });
    expect(displaySize({ recordWidth: 1280, recordHeight: 720 }, false)).toEqual({ width: 1280, height: 720 });
    expect(displaySize({ recordWidth: 320, recordHeight: 180 }, true)).toEqual({ width: 320, height: 180 });
    expect(displaySize({ recordWidth: 1000, recordHeight: 563 }, true)).toEqual({ width: 640, height: 360 }); // even sides
  });
});
