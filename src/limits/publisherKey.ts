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

export function publisherKey(request: Request, addressKey: string, tokenOf: TokenOf | undefined): PublisherKey {
  const token = tokenOf?.(request);
  if (token === undefined) return { kind: "address", key: `address:${addressKey}` };
  return { kind: "token", key: `token:${Bun.hash(token).toString(36)}` };
}
