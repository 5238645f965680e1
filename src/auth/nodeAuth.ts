/**
 * Builds a node's authorization from its configuration: the pinned keys, the jose verifier, the access
 * policy and the one expiry timer. Throws ConfigError (naming the variable) for an unusable key.
 */
import type { Config } from "../config/config.ts";
import { Access } from "./access.ts";
import { ExpiryClock } from "./expiryClock.ts";
import { StreamAuthorizer } from "./streamAuthorizer.ts";
import { createTokenVerifier } from "./tokenVerifier.ts";
import { loadVerificationKeys } from "./verificationKeys.ts";

export async function createNodeAuth(config: Config, honoursCredentials: (request: Request) => boolean): Promise<StreamAuthorizer> {
  const { jwtPublicKeyFile, jwtIssuer, jwtAudience } = config.security;
  const keys = await loadVerificationKeys({ jwtSecret: config.jwtSecret, jwtPublicKeyFile });
  const verifier = keys
    ? createTokenVerifier(keys, { ...(jwtIssuer !== undefined ? { issuer: jwtIssuer } : {}), ...(jwtAudience !== undefined ? { audience: jwtAudience } : {}) })
    : undefined;
  return new StreamAuthorizer(new Access({ verifier, honoursCredentials }), new ExpiryClock());
}
