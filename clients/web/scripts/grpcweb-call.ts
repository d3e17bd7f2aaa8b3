// Makes ONE gRPC-Web call to a Scale Diffusion service from Node, the way the browser client does.
//
//   cd clients/web && node --import tsx scripts/grpcweb-call.ts <baseUrl> <Service> <Method> '<json request>'
//        [--timeout-ms N] [--header 'name: value']...
//   (or from any directory: clients/web/node_modules/.bin/tsx clients/web/scripts/grpcweb-call.ts ...;
//   `node --import tsx` resolves "tsx" from the current directory, so it needs cwd = clients/web)
//
// <Service> is a service name from the generated stubs in src/gen ("IngestService" or
// "scalediffusion.v1.IngestService"); <Method> is the proto method name ("GetSession").
// The request is proto3 JSON (field names in lowerCamelCase or as in the .proto).
//
// Prints exactly one JSON line on stdout and exits 0:
//   {"ok":true,"response":<proto3 JSON of the response>}
//   {"ok":true,"responses":[...]}            (server-streaming methods: every message, in order)
//   {"ok":false,"code":"not_found","message":"<error message without the code prefix>"}
// Exit 2 (message on stderr, nothing on stdout) for usage errors: wrong arguments, unknown
// service or method, a request that is not valid JSON for the input message, or a
// client/bidi-streaming method (gRPC-Web cannot send those). Exit 1 only for bugs.

import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  createRegistry,
  fromJson,
  toJson,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescService,
  type JsonValue,
  type Message,
  type Registry,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

export const USAGE =
  "usage: node --import tsx scripts/grpcweb-call.ts <baseUrl> <Service> <Method> '<json request>' " +
  "[--timeout-ms N] [--header 'name: value']...";

export const DEFAULT_GEN_DIR = fileURLToPath(new URL("../src/gen/", import.meta.url));
export const DEFAULT_TIMEOUT_MS = 30_000;

/** A problem with how the script was invoked; exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface CallArgs {
  baseUrl: string;
  service: string;
  method: string;
  request: JsonValue;
  timeoutMs: number;
  headers: [string, string][];
}

export function parseArgs(argv: readonly string[]): CallArgs {
  const positional: string[] = [];
  const headers: [string, string][] = [];
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const takeValue = (name: string): string => {
      const eq = arg.indexOf("=");
      if (eq !== -1) return arg.slice(eq + 1);
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${name} needs a value`);
      return next;
    };
    if (arg === "-h" || arg === "--help") {
      throw new UsageError("help requested");
    } else if (arg === "--timeout-ms" || arg.startsWith("--timeout-ms=")) {
      const raw = takeValue("--timeout-ms");
      const n = Number(raw);
      if (!Number.isInteger(n) || n <= 0) {
        throw new UsageError(`--timeout-ms must be a positive integer, got ${JSON.stringify(raw)}`);
      }
      timeoutMs = n;
    } else if (arg === "--header" || arg.startsWith("--header=")) {
      const raw = takeValue("--header");
      const colon = raw.indexOf(":");
      if (colon <= 0) {
        throw new UsageError(`--header must look like 'name: value', got ${JSON.stringify(raw)}`);
      }
      headers.push([raw.slice(0, colon).trim(), raw.slice(colon + 1).trim()]);
    } else if (arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length !== 4) {
    throw new UsageError(`expected 4 arguments, got ${positional.length}`);
  }
  const [baseUrl, service, method, requestText] = positional as [string, string, string, string];
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new UsageError(`baseUrl ${JSON.stringify(baseUrl)} is not an absolute URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`baseUrl ${JSON.stringify(baseUrl)} must be http: or https:`);
  }
  let request: JsonValue;
  try {
    request = JSON.parse(requestText) as JsonValue;
  } catch (err) {
    throw new UsageError(`request is not valid JSON: ${(err as Error).message}`);
  }
  if (request === null || typeof request !== "object" || Array.isArray(request)) {
    throw new UsageError("request must be a JSON object");
  }
  return { baseUrl, service, method, request, timeoutMs, headers };
}

async function findPbFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /_pb\.(ts|js)$/.test(e.name) && !e.name.endsWith(".d.ts"))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

function isDescFile(value: unknown): value is DescFile {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { kind?: unknown }).kind === "file" &&
    Array.isArray((value as { services?: unknown }).services)
  );
}

/** Imports every generated *_pb module under genDir and returns their file descriptors. */
export async function loadGeneratedFiles(genDir: string = DEFAULT_GEN_DIR): Promise<DescFile[]> {
  const files = new Map<string, DescFile>();
  for (const file of await findPbFiles(genDir)) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (isDescFile(value)) files.set(value.name, value);
    }
  }
  if (files.size === 0) {
    throw new UsageError(`no generated *_pb files under ${genDir}; run protoc-gen-es first`);
  }
  return [...files.values()];
}

/** Finds a service by simple name ("IngestService") or full name ("scalediffusion.v1.IngestService"). */
export function findService(files: readonly DescFile[], name: string): DescService {
  const services = files.flatMap((f) => f.services);
  const byFull = services.find((s) => s.typeName === name);
  if (byFull) return byFull;
  const bySimple = services.filter((s) => s.name === name);
  if (bySimple.length === 1) return bySimple[0]!;
  if (bySimple.length > 1) {
    throw new UsageError(
      `service ${name} is ambiguous: ${bySimple.map((s) => s.typeName).join(", ")}`,
    );
  }
  const known = services.map((s) => s.typeName).sort().join(", ");
  throw new UsageError(`unknown service ${JSON.stringify(name)}; known: ${known}`);
}

/** Finds a method by its proto name ("GetSession"); the JS name ("getSession") is accepted too. */
export function findMethod(service: DescService, name: string): DescMethod {
  const method =
    service.methods.find((m) => m.name === name) ?? service.methods.find((m) => m.localName === name);
  if (!method) {
    const known = service.methods.map((m) => m.name).join(", ");
    throw new UsageError(`unknown method ${JSON.stringify(name)} on ${service.typeName}; known: ${known}`);
  }
  if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
    throw new UsageError(
      `${service.typeName}/${method.name} is ${method.methodKind}; gRPC-Web supports only unary and server-streaming calls`,
    );
  }
  return method;
}

export type CallResult =
  | { ok: true; response: JsonValue }
  | { ok: true; responses: JsonValue[] }
  | { ok: false; code: string; message: string };

/** Converts any failure of a call into the {"ok":false} result. */
export function errorResult(err: unknown): CallResult {
  const ce = ConnectError.from(err);
  // A fetch() that cannot reach the server rejects with TypeError("fetch failed"); connect reports
  // that as "unknown". Report it as "unavailable", like native gRPC clients do.
  const cause = ce.cause;
  if (ce.code === Code.Unknown && cause instanceof TypeError) {
    const inner = (cause as { cause?: unknown }).cause;
    const detail = inner instanceof Error ? `: ${inner.message}` : "";
    return { ok: false, code: codeToString(Code.Unavailable), message: `${cause.message}${detail}` };
  }
  return { ok: false, code: codeToString(ce.code), message: ce.rawMessage };
}

type LooseClient = Record<
  string,
  (request: unknown, options: { timeoutMs: number; headers: [string, string][] }) => unknown
>;

export interface CallOptions {
  fetch?: typeof globalThis.fetch;
  genDir?: string;
}

/** Resolves the method, makes the call and returns the result object (never throws for RPC errors). */
export async function call(args: CallArgs, options: CallOptions = {}): Promise<CallResult> {
  const files = await loadGeneratedFiles(options.genDir);
  const registry: Registry = createRegistry(...files);
  const service = findService(files, args.service);
  const method = findMethod(service, args.method);
  let request: Message;
  try {
    request = fromJson(method.input as DescMessage, args.request, { registry });
  } catch (err) {
    throw new UsageError(`request does not match ${method.input.typeName}: ${(err as Error).message}`);
  }
  const transport: Transport = createGrpcWebTransport({
    baseUrl: args.baseUrl,
    // Node's global fetch (undici) always speaks HTTP/1.1; connect-web has no httpVersion option
    // (that is connect-node's). Binary framing is the gRPC-Web default.
    fetch: options.fetch ?? globalThis.fetch,
    useBinaryFormat: true,
  });
  const client = createClient(service, transport) as unknown as LooseClient;
  const fn = client[method.localName];
  if (typeof fn !== "function") {
    throw new Error(`client has no method ${method.localName}`);
  }
  const callOptions = { timeoutMs: args.timeoutMs, headers: args.headers };
  const output = method.output as DescMessage;
  try {
    if (method.methodKind === "server_streaming") {
      const responses: JsonValue[] = [];
      for await (const msg of fn(request, callOptions) as AsyncIterable<Message>) {
        responses.push(toJson(output, msg, { registry }));
      }
      return { ok: true, responses };
    }
    const response = (await fn(request, callOptions)) as Message;
    return { ok: true, response: toJson(output, response, { registry }) };
  } catch (err) {
    return errorResult(err);
  }
}

function writeAndExit(stream: NodeJS.WriteStream, text: string, code: number): void {
  stream.write(text, () => process.exit(code));
}

export async function main(argv: readonly string[]): Promise<void> {
  let result: CallResult;
  try {
    result = await call(parseArgs(argv));
  } catch (err) {
    if (err instanceof UsageError) {
      writeAndExit(process.stderr, `grpcweb-call: ${err.message}\n${USAGE}\n`, 2);
      return;
    }
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    writeAndExit(process.stderr, `grpcweb-call: internal error: ${text}\n`, 1);
    return;
  }
  writeAndExit(process.stdout, `${JSON.stringify(result)}\n`, 0);
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (invokedDirectly) {
  void main(process.argv.slice(2));
}
