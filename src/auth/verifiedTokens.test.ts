/**
 * VerifiedTokens: a success is remembered until `exp`, a failure never; tokens are told apart by their
 * whole text; memory stays within its bytes. With a counting stand-in verifier, then with jose itself.
 */
import { describe, expect, test } from "bun:test";
import { SignJWT } from "jose";
import { createTokenVerifier, type TokenVerifier, type VerifiedToken } from "./tokenVerifier.ts";
import { ENTRY_OVERHEAD_BYTES, VerifiedTokens, entryBytes } from "./verifiedTokens.ts";
import { loadVerificationKeys } from "./verificationKeys.ts";

const HOUR_MS = 3_600_000;

function counting(result: (token: string) => VerifiedToken) {
  const calls: string[] = [];
  const verify: TokenVerifier = async (token) => {
    calls.push(token);
    if (token.startsWith("bad")) throw new Error("does not verify");
    return result(token);
  };
  return { calls, verify };
}

const grantsAll = { publish: "*", subscribe: "*" } as VerifiedToken["grants"];

describe("VerifiedTokens", () => {
  test("a token that verified is checked once; another token is checked on its own", async () => {
    const now = 1_000_000;
    const { calls, verify } = counting(() => ({ grants: grantsAll, expiresAt: now + HOUR_MS, subject: "p" }));
    const tokens = new VerifiedTokens(verify, { maxBytes: 1 << 20, now: () => now });
    const first = await tokens.verifier("tok-a");
    expect(await tokens.verifier("tok-a")).toBe(first);
    await tokens.verifier("tok-a");
    expect(calls).toEqual(["tok-a"]);
    await tokens.verifier("tok-b");
    // A token one character longer or shorter is another token.
    await tokens.verifier("tok-a ");
    await tokens.verifier("tok-");
    expect(calls).toEqual(["tok-a", "tok-b", "tok-a ", "tok-"]);
  });

  test("a failure is never remembered: the token is checked, and refused, every time", async () => {
    const { calls, verify } = counting(() => ({ grants: grantsAll, expiresAt: undefined, subject: undefined }));
    const tokens = new VerifiedTokens(verify, { maxBytes: 1 << 20 });
    for (let i = 0; i < 3; i++) await expect(tokens.verifier("bad-token")).rejects.toThrow("does not verify");
    expect(calls).toEqual(["bad-token", "bad-token", "bad-token"]);
    expect(tokens.size).toBe(0);
  });

  test("at its exp a remembered token is checked again (and what the check says stands)", async () => {
    let now = 1_000_000;
    const expiresAt = now + 60_000;
    let valid = true;
    const calls: string[] = [];
    const verify: TokenVerifier = async (token) => {
      calls.push(token);
      if (!valid) throw new Error("the token has expired");
      return { grants: grantsAll, expiresAt, subject: undefined };
    };
    const tokens = new VerifiedTokens(verify, { maxBytes: 1 << 20, now: () => now });
    await tokens.verifier("tok");
    now = expiresAt - 1;
    await tokens.verifier("tok");
    expect(calls).toHaveLength(1);
    now = expiresAt;
    valid = false;
    await expect(tokens.verifier("tok")).rejects.toThrow("expired");
    expect(calls).toHaveLength(2);
    expect(tokens.size).toBe(0);
    expect(tokens.heldBytes).toBe(0);
  });

  test("a token that verifies past its exp (jose's clock allowance) is not remembered", async () => {
    const now = 1_000_000;
    const { calls, verify } = counting(() => ({ grants: grantsAll, expiresAt: now - 1_000, subject: undefined }));
    const tokens = new VerifiedTokens(verify, { maxBytes: 1 << 20, now: () => now });
    await tokens.verifier("late");
    await tokens.verifier("late");
    expect(calls).toEqual(["late", "late"]);
  });

  test("memory stays within maxBytes: the least recently used token goes first", async () => {
    const { calls, verify } = counting(() => ({ grants: grantsAll, expiresAt: undefined, subject: undefined }));
    const token = (i: number) => `token-${String(i).padStart(94, "0")}`; // 100 characters
    const perEntry = 100 * 2 + ENTRY_OVERHEAD_BYTES;
    const tokens = new VerifiedTokens(verify, { maxBytes: perEntry * 3 });
    for (const i of [1, 2, 3]) await tokens.verifier(token(i));
    await tokens.verifier(token(1)); // now the most recently used
    await tokens.verifier(token(4)); // evicts 2, the least recently used
    expect(tokens.size).toBe(3);
    expect(tokens.heldBytes).toBeLessThanOrEqual(perEntry * 3);
    calls.length = 0;
    await tokens.verifier(token(1));
    await tokens.verifier(token(3));
    await tokens.verifier(token(4));
    expect(calls).toEqual([]);
    await tokens.verifier(token(2));
    expect(calls).toEqual([token(2)]);
    // A token bigger than the whole budget is checked every time and never held.
    const huge = "x".repeat(perEntry * 3);
    await tokens.verifier(huge);
    await tokens.verifier(huge);
    expect(calls.filter((t) => t === huge)).toHaveLength(2);
    expect(tokens.heldBytes).toBeLessThanOrEqual(perEntry * 3);
  });

  test("the match ids a token grants count towards its bytes: a short token granting many ids is not held as small", () => {
    const few = entryBytes("t".repeat(100), { grants: grantsAll, expiresAt: undefined, subject: undefined });
    const ids = new Set(Array.from({ length: 1000 }, (_, i) => `m${i}`));
    const many = entryBytes("t".repeat(100), { grants: { publish: ids, subscribe: ids }, expiresAt: undefined, subject: undefined });
    // Each granted id is at least its Set slot and string: 2,000 of them far outweigh the token's text.
    expect(many - few).toBeGreaterThanOrEqual(2000 * 64);
  });

  test("with jose: a signed token verifies once; a forged one is refused every time", async () => {
    const secret = "s".repeat(32);
    const keys = await loadVerificationKeys({ jwtSecret: secret, jwtPublicKeyFile: undefined });
    const jose = createTokenVerifier(keys!);
    let checks = 0;
    const tokens = new VerifiedTokens(
      async (t) => {
        checks++;
        return jose(t);
      },
      { maxBytes: 1 << 20 },
    );
    const signed = await new SignJWT({ "touchline.publish": "*" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(secret));
    const a = await tokens.verifier(signed);
    const b = await tokens.verifier(signed);
    expect(b).toBe(a);
    expect(a.grants.publish).toBe("*");
    expect(checks).toBe(1);
    // The same claims signed with another secret: the same length, another text, refused each time.
    const forged = await new SignJWT({ "touchline.publish": "*" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("f".repeat(32)));
    for (let i = 0; i < 2; i++) await expect(tokens.verifier(forged)).rejects.toThrow("signature");
    expect(checks).toBe(3);
  });
});
