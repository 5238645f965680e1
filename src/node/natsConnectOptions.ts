/**
 * The NATS client's connection options for a node's NATS settings (config/natsConfig.ts): the servers,
 * one authenticator and the TLS files. The client reads the TLS files itself when it upgrades a
 * connection; the credentials were read at start-up.
 */
import {
  type Authenticator,
  type ConnectionOptions,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
import type { NatsAuth, NatsConfig } from "../config/natsConfig.ts";

function authenticator(auth: NatsAuth): Authenticator {
  switch (auth.kind) {
    case "user":
      return usernamePasswordAuthenticator(auth.user, auth.password);
    case "token":
      return tokenAuthenticator(auth.token);
    case "creds":
      return credsAuthenticator(auth.creds);
    case "nkey":
      return nkeyAuthenticator(auth.seed);
  }
}

export function natsConnectOptions(nats: NatsConfig): Pick<ConnectionOptions, "servers" | "authenticator" | "tls"> {
  return {
    servers: nats.urls,
    ...(nats.auth ? { authenticator: authenticator(nats.auth) } : {}),
    ...(nats.tls ? { tls: nats.tls } : {}),
  };
}
