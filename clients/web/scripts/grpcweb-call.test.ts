import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  GetSessionRequestSchema,
  SessionSchema,
  SessionState,
} from "../src/gen/scalediffusion/v1/ingest_pb";
import {
  call,
  errorResult,
  findMethod,
  findService,
  loadGeneratedFiles,
  parseArgs,
  UsageError,
} from "./grpcweb-call";

function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

function grpcWebResponse(parts: Uint8Array[]): Response {
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  return new Response(body, { status: 200, headers: { "content-type": "application/grpc-web+proto" } });
}

const trailer = (text: string) => envelope(0x80, new TextEncoder().encode(text));

describe("parseArgs", () => {
  it("parses the four positionals and options", () => {
    const args = parseArgs([
      "http://127.0.0.1:8080",
      "IngestService",
      "GetSession",
      '{"sessionId":"s1"}',
      "--timeout-ms",
      "1500",
      "--header=authorization: Bearer x",
    ]);
    expect(args).toEqual({
      baseUrl: "http://127.0.0.1:8080",
      service: "IngestService",
      method: "GetSession",
      request: { sessionId: "s1" },
      timeoutMs: 1500,
      headers: [["authorization", "Bearer x"]],
    });
  });

  it.each([
    [[]],
    [["http://h", "IngestService", "GetSession"]],
    [["not-a-url", "IngestService", "GetSession", "{}"]],
    [["http://h", "IngestService", "GetSession", "{oops"]],
    [["http://h", "IngestService", "GetSession", "[]"]],
    [["http://h", "IngestService", "GetSession", "{}", "--timeout-ms", "0"]],
    [["http://h", "IngestService", "GetSession", "{}", "--bogus"]],
  ])("rejects %j as a usage error", (argv) => {
    expect(() => parseArgs(argv)).toThrow(UsageError);
  });
});

describe("service lookup", () => {
  it("finds every service in the generated files by simple or full name", async () => {
    const files = await loadGeneratedFiles();
    for (const name of ["IngestService", "ProcessorService", "TrainerService", "DiffusionService"]) {
      expect(findService(files, name).typeName).toBe(`scalediffusion.v1.${name}`);
      expect(findService(files, `scalediffusion.v1.${name}`).name).toBe(name);
    }
    expect(() => findService(files, "NopeService")).toThrow(/unknown service "NopeService"/);
  });

  it("finds methods by proto name and rejects client streaming", async () => {
    const files = await loadGeneratedFiles();
    expect(findMethod(findService(files, "IngestService"), "GetSession").localName).toBe("getSession");
    expect(findMethod(findService(files, "TrainerService"), "WatchJob").methodKind).toBe("server_streaming");
    expect(() => findMethod(findService(files, "DiffusionService"), "Stream")).toThrow(/bidi_streaming/);
    expect(() => findMethod(findService(files, "IngestService"), "Nope")).toThrow(/unknown method/);
  });
});

describe("errorResult", () => {
  it("uses the Connect code name and the raw message", () => {
    expect(errorResult(new ConnectError("session x not found", Code.NotFound))).toEqual({
      ok: false,
      code: "not_found",
      message: "session x not found",
    });
  });

  it("reports an unreachable server as unavailable", () => {
    const err = new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:1") });
    expect(errorResult(ConnectError.from(err))).toEqual({
      ok: false,
      code: "unavailable",
      message: "fetch failed: connect ECONNREFUSED 127.0.0.1:1",
    });
  });
});

describe("call", () => {
  const args = {
    baseUrl: "http://ingest.test/base",
    service: "IngestService",
    method: "GetSession",
    request: { sessionId: "s1" },
    timeoutMs: 5000,
    headers: [["x-test", "1"]] as [string, string][],
  };

  it("sends a gRPC-Web request and returns the proto3 JSON response", async () => {
    let seen: { url: string; init: RequestInit } | undefined;
    const fetch: typeof globalThis.fetch = async (input, init) => {
      seen = { url: String(input), init: init! };
      const reply = create(SessionSchema, { sessionId: "s1", state: SessionState.ACCEPTED, segmentCount: 3 });
      return grpcWebResponse([envelope(0, toBinary(SessionSchema, reply)), trailer("grpc-status: 0\r\n")]);
    };
    const result = await call(args, { fetch });
    expect(result).toEqual({
      ok: true,
      response: { sessionId: "s1", state: "SESSION_STATE_ACCEPTED", segmentCount: 3 },
    });
    expect(seen!.url).toBe("http://ingest.test/base/scalediffusion.v1.IngestService/GetSession");
    const headers = new Headers(seen!.init.headers);
    expect(headers.get("content-type")).toBe("application/grpc-web+proto");
    expect(headers.get("x-test")).toBe("1");
    const body = seen!.init.body as Uint8Array;
    expect(fromBinary(GetSessionRequestSchema, body.subarray(5)).sessionId).toBe("s1");
  });

  it("returns the gRPC status of a failed call", async () => {
    const fetch: typeof globalThis.fetch = async () =>
      grpcWebResponse([trailer("grpc-status: 5\r\ngrpc-message: session%20s1%20not%20found\r\n")]);
    expect(await call(args, { fetch })).toEqual({
      ok: false,
      code: "not_found",
      message: "session s1 not found",
    });
  });

  it("treats a request that does not fit the input message as a usage error", async () => {
    await expect(call({ ...args, request: { nope: 1 } })).rejects.toThrow(UsageError);
  });
});
