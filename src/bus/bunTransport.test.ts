import { describe, expect, test } from "bun:test";
import { clientCertificateMissing } from "./bunTransport.ts";

describe("clientCertificateMissing", () => {
  test("a server verifying clients and no certificate: the settings to set are named", () => {
    const err = clientCertificateMissing({ tls_verify: true }, { tls: { caFile: "/ca.pem" } });
    expect(err?.message).toContain("NATS_TLS_CERT_FILE");
    expect(clientCertificateMissing({ tls_verify: true }, {})).toBeInstanceOf(Error);
  });

  test("a certificate, by file or inline, or a server that does not verify: nothing to say", () => {
    expect(clientCertificateMissing({ tls_verify: true }, { tls: { certFile: "/c.pem", keyFile: "/k.pem" } })).toBeUndefined();
    expect(clientCertificateMissing({ tls_verify: true }, { tls: { cert: "PEM", key: "PEM" } })).toBeUndefined();
    expect(clientCertificateMissing({}, {})).toBeUndefined();
    expect(clientCertificateMissing({ tls_verify: false }, { tls: null })).toBeUndefined();
  });
});
