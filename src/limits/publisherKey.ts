/**
 * Who a publish counts against for PUBLISH_RATE: the token it carries when tokens mean something
 * (authorization is on), else the client's address. The token is hashed, so a key is short whatever the
 * token's length. It is not verified here (the rate check comes first, to be cheap): a forged token
 * only ever spends its own bucket, and is then refused by authorization; it cannot spend a real
 * publisher's without knowing that publisher's token.
 */
export type PublisherKey = { kind: "token"; key: string } | { kind: "address"; key: string };

/** The token a request presents (auth's reading of it, handed in so limits do not depend on auth). */
export type TokenOf = (request: Request) => string | undefined;

/** A publish presenting `token`: counted against the token, whatever address it comes from. */
export function tokenPublisher(token: string): PublisherKey {
  return { kind: "token", key: `token:${Bun.hash(token).toString(36)}` };
}

/** A publish without a token: counted against the client's address (its limiter key). */
export function addressPublisher(addressKey: string): PublisherKey {
  return { kind: "address", key: `address:${addressKey}` };
}
