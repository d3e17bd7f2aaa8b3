import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { codeName, describeError } from "./errors";

describe("describeError", () => {
  it("names codes", () => {
    expect(codeName(Code.InvalidArgument)).toBe("INVALID_ARGUMENT");
    expect(codeName(Code.Unauthenticated)).toBe("UNAUTHENTICATED");
  });

  it("explains RPC failures in words", () => {
    expect(describeError(new ConnectError("token expired", Code.Unauthenticated), "Signing in")).toBe(
      "Signing in failed: the service did not accept your token (UNAUTHENTICATED: token expired). Sign in again with a valid token.",
    );
    expect(describeError(new ConnectError("fetch failed", Code.Unknown), "Loading the city", "http://127.0.0.1:8080")).toMatch(
      /cannot reach the service at http:\/\/127.0.0.1:8080/,
    );
    expect(describeError(new ConnectError("bad wallet", Code.InvalidArgument), "Saving the wallet")).toBe(
      "Saving the wallet was refused: bad wallet (INVALID_ARGUMENT).",
    );
    expect(describeError(new Error("boom"), "X")).toBe("X failed: boom");
    expect(describeError("weird", "X")).toBe("X failed: weird");
  });
});
