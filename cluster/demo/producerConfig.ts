/**
 * The demo producer's settings, from the environment. A bad value stops it with one line naming the
 * variable, like the node does.
 */
import { SignJWT } from "jose";

export interface ProducerConfig {
  baseUrl: string;
  matches: number;
  speed: number;
  token: string | undefined;
}

export const DEFAULT_MATCHES = 120;
const DEFAULT_ENTRY_PORT = 3000;
const MINTED_TOKEN_LIFETIME = "7d";

type Env = Record<string, string | undefined>;

export class ProducerConfigError extends Error {}

export async function loadProducerConfig(env: Env = process.env): Promise<ProducerConfig> {
  const matchesRaw = env.MATCHES?.trim() || String(DEFAULT_MATCHES);
  if (!/^\d+$/.test(matchesRaw) || Number(matchesRaw) < 1) throw new ProducerConfigError(`invalid MATCHES: expected a whole number >= 1, got "${matchesRaw}"`);
  const speedRaw = env.SPEED?.trim() || "1";
  const speed = Number(speedRaw);
  if (!Number.isFinite(speed) || speed <= 0) throw new ProducerConfigError(`invalid SPEED: expected a number > 0, got "${speedRaw}"`);
  const entry = `http://127.0.0.1:${env.ENTRY_PORT?.trim() || DEFAULT_ENTRY_PORT}`;
  const baseUrl = (env.TOUCHLINE_URL?.trim() || entry).replace(/\/+$/, "");
  if (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol)) {
    throw new ProducerConfigError(`invalid TOUCHLINE_URL: expected http(s)://host:port, got "${baseUrl}"`);
  }
  return { baseUrl, matches: Number(matchesRaw), speed, token: await publishToken(env) };
}

/**
 * TOUCHLINE_TOKEN when given; otherwise, when the cluster runs with TOUCHLINE_JWT_SECRET (as `bun run
 * cluster` passes it down), a token of our own that may publish to every match.
 */
async function publishToken(env: Env): Promise<string | undefined> {
  const given = env.TOUCHLINE_TOKEN?.trim();
  if (given) return given;
  const secret = env.TOUCHLINE_JWT_SECRET;
  if (!secret) return undefined;
  return await new SignJWT({ "touchline.publish": ["*"] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("touchline-demo-producer")
    .setIssuedAt()
    .setExpirationTime(MINTED_TOKEN_LIFETIME)
    .sign(new TextEncoder().encode(secret));
}
