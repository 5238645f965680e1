/**
 * VerifiedTokens: a token that verified, remembered until it expires, so a publisher sending its events
 * one request at a time with the same token pays the signature check once, not on every request. jose's
 * check took 37 µs (HS256), 49 µs (RS256) and 76 µs (ES256) a request on the development machine, as much
 * as all the rest of a single publish.
 *
 * What is remembered is only a success, and never past the token's `exp`: a token that failed (forged,
 * expired, not valid yet, not for this audience) is checked again every time it comes. The keys a node
 * verifies with are fixed when it starts (auth/verificationKeys.ts), so a token that verified once keeps
 * verifying until it expires. Tokens are looked up by their whole text, never by a hash of it: a collision
 * would let one token pass for another.
 *
 * Memory is bounded by bytes: the text of the tokens held, the match ids their claims grant and a fixed
 * allowance per entry (`entryBytes`), at most `maxBytes`; the least recently used go first.
 */
import type { TokenVerifier, VerifiedToken } from "./tokenVerifier.ts";

/** What an entry holds beside its token's text and granted ids: the map's slot and a few small objects. */
export const ENTRY_OVERHEAD_BYTES = 512;
/** JavaScript strings take up to two bytes a character. */
const BYTES_PER_CHAR = 2;
/**
 * A match id a claim grants, beyond its characters: its string and its slot in the grant's Set. Counted
 * apart from the token's text because a short id takes more memory as a Set entry than in the token.
 */
const GRANTED_ID_BYTES = 64;

/** What remembering `verified` for `token` is counted at. */
export function entryBytes(token: string, verified: VerifiedToken): number {
  let bytes = token.length * BYTES_PER_CHAR + ENTRY_OVERHEAD_BYTES;
  for (const grant of [verified.grants.publish, verified.grants.subscribe]) {
    if (typeof grant === "string") continue;
    for (const id of grant) bytes += GRANTED_ID_BYTES + id.length * BYTES_PER_CHAR;
  }
  return bytes;
}

export interface VerifiedTokensOptions {
  /** The most bytes the remembered tokens may take (see ENTRY_OVERHEAD_BYTES). */
  maxBytes: number;
  /** Milliseconds since the epoch (tests pass their own). */
  now?: () => number;
}

interface Entry {
  verified: VerifiedToken;
  bytes: number;
}

export class VerifiedTokens {
  /** In least-recently-used order: a hit moves its entry to the end. */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly now: () => number;

  constructor(
    private readonly verify: TokenVerifier,
    private readonly opts: VerifiedTokensOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** The verifier to use in the underlying one's place. */
  readonly verifier: TokenVerifier = async (token) => {
    const known = this.entries.get(token);
    if (known !== undefined) {
      this.entries.delete(token);
      if (!this.expired(known.verified)) {
        this.entries.set(token, known);
        return known.verified;
      }
      this.bytes -= known.bytes;
    }
    const verified = await this.verify(token);
    this.remember(token, verified);
    return verified;
  };

  /** Tokens remembered (for tests). */
  get size(): number {
    return this.entries.size;
  }

  /** Bytes the remembered tokens are counted at (for tests). */
  get heldBytes(): number {
    return this.bytes;
  }

  private expired(verified: VerifiedToken): boolean {
    return verified.expiresAt !== undefined && verified.expiresAt <= this.now();
  }

  private remember(token: string, verified: VerifiedToken): void {
    // Verified inside jose's clock-skew allowance after `exp`: good this once, not to be remembered.
    if (this.expired(verified)) return;
    const bytes = entryBytes(token, verified);
    if (bytes > this.opts.maxBytes) return;
    const previous = this.entries.get(token);
    if (previous !== undefined) {
      // Two requests with a new token were checked at once: the second answer replaces the first.
      this.entries.delete(token);
      this.bytes -= previous.bytes;
    }
    while (this.bytes + bytes > this.opts.maxBytes) {
      const oldest = this.entries.entries().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value[0]);
      this.bytes -= oldest.value[1].bytes;
    }
    this.entries.set(token, { verified, bytes });
    this.bytes += bytes;
  }
}
