import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { RejectionReason, RejectionSchema } from "../gen/scalediffusion/v1/processor_pb";
import { codeName, describeError, describeRejection } from "./errors";

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

describe("describeRejection", () => {
  it("names the reason and what was measured or said", () => {
    const blur = create(RejectionSchema, { reason: RejectionReason.BLUR, metric: "laplacian_var", value: 12.5, threshold: 40 });
    expect(describeRejection(blur)).toBe("blur: laplacian_var 12.50 (limit 40)");
    const dup = create(RejectionSchema, { reason: RejectionReason.DUPLICATE, metric: "duplicate_video", detail: "these video bytes were already uploaded" });
    expect(describeRejection(dup)).toBe("duplicate: these video bytes were already uploaded");
    expect(describeRejection(create(RejectionSchema, { reason: RejectionReason.TOO_SHORT }))).toBe("too short");
  });
});
