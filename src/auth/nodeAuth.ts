/**
 * Builds a node's authorization from its configuration: the pinned keys, the jose verifier (and what it
 * verified, remembered), the access policy and the one expiry timer. Throws ConfigError (naming the
 * variable) for an unusable key.
 */
import type { Config } from "../config/config.ts";
import { Access } from "./access.ts";
import { ExpiryClock } from "./expiryClock.ts";
import { StreamAuthorizer } from "./streamAuthorizer.ts";
import { createTokenVerifier } from "./tokenVerifier.ts";
import { loadVerificationKeys } from "./verificationKeys.ts";
import { VerifiedTokens } from "./verifiedTokens.ts";

/**
 * What the remembered verified tokens may take (auth/verifiedTokens.ts): about 7,000 tokens of 300
 * characters granting "*", more than the publishers and the reconnecting viewers of a node's busiest minute.
 */
const VERIFIED_TOKENS_MAX_BYTES = 8 * 1024 * 1024;

export async function createNodeAuth(config: Config, honoursCredentials: (request: Request) => boolean): Promise<StreamAuthorizer> {
  const { jwtPublicKeyFile, jwtIssuer, jwtAudience } = config.security;
  const keys = await loadVerificationKeys({ jwtSecret: config.jwtSecret, jwtPublicKeyFile });
  const verifier = keys
    ? new VerifiedTokens(
        createTokenVerifier(keys, {
          ...(jwtIssuer !== undefined ? { issuer: jwtIssuer } : {}),
          ...(jwtAudience !== undefined ? { audience: jwtAudience } : {}),
        }),
        { maxBytes: VERIFIED_TOKENS_MAX_BYTES },
      ).verifier
    : undefined;
  return new StreamAuthorizer(new Access({ verifier, honoursCredentials }), new ExpiryClock());
}
