/**
 * The values of this node's settings that every node of its cluster must share (cluster/sharedSettings.ts),
 * as its membership entry announces them: by variable name, durations in ms as configured.
 */
import type { SharedSettings } from "../cluster/sharedSettings.ts";
import type { Config } from "../config/config.ts";

export function announcedSettings(c: Config): SharedSettings {
  const security = c.security;
  return {
    RETENTION: c.retentionMs,
    JETSTREAM_REPLICAS: c.jetstreamReplicas,
    MEMBERSHIP_TTL: c.membershipTtlMs,
    MAX_STATE_BYTES: c.maxStateBytes,
    // Whether publishing needs a token at all; the keys themselves are never announced.
    TOKENS: c.jwtSecret !== undefined || security.jwtPublicKeyFile !== undefined ? "required" : "off",
    TOUCHLINE_JWT_ISSUER: security.jwtIssuer ?? "",
    TOUCHLINE_JWT_AUDIENCE: security.jwtAudience ?? "",
  };
}
