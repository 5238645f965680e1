/**
 * Who a publish counts against for PUBLISH_RATE: the token it carries when tokens mean something
 * (authorization is on), else the client's address. The token is hashed, so a key is short whatever the
 * token's length. It is not verified here (the rate check comes first, to be cheap): a forged token
 * only ever spends its own bucket, and is then refused by authorization; it cannot spend a real
 * publisher's without knowing that publisher's token.
 */
import { findToken } from "../auth/tokenTransport.ts";

export type PublisherKey = { kind: "token"; key: string } | { kind: "address"; key: string };

export function publisherKey(request: Request, addressKey: string, tokensVerified: boolean): PublisherKey {
  const found = tokensVerified ? findToken(request, new URL(request.url)) : undefined;
  if (found === undefined || !("token" in found)) return { kind: "address", key: `address:${addressKey}` };
  return { kind: "token", key: `token:${Bun.hash(found.token).toString(36)}` };
}
