import { describe, expect, it } from "vitest";
import { tokenProblem } from "./token";

describe("tokenProblem", () => {
  it("explains what is wrong with a pasted token", () => {
    expect(tokenProblem("")).toMatch(/Paste/);
    expect(tokenProblem("Bearer abcdefghij")).toMatch(/without the word "Bearer"/);
    expect(tokenProblem("abc def ghij")).toMatch(/no spaces/);
    expect(tokenProblem("abc")).toMatch(/too short/);
    expect(tokenProblem("  sdt.eyJhbGciOi.abcdef  ")).toBeNull();
  });
});
