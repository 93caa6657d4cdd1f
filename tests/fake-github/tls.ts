/**
 * A self-signed certificate for the fake's HTTPS listener. Nix's github fetcher insists on https and
 * on `api.<host>` (or `<host>/api/v3`), so the certificate names both `api.localhost` and `localhost`,
 * and tests hand it to Nix through NIX_SSL_CERT_FILE.
 */
import { join } from "node:path";
import { $ } from "zx";
import { processTempDir } from "./tmp.ts";

export interface TestCertificate {
  /** PEM certificate on disk: what NIX_SSL_CERT_FILE (and curl's --cacert) should point at. */
  certFile: string;
  keyFile: string;
  /** The same certificate and key as PEM text, for Bun.serve's `tls`. */
  cert: string;
  key: string;
}

let generating: Promise<TestCertificate> | undefined;

async function generate(): Promise<TestCertificate> {
  const dir = processTempDir("flake-bump-tls");
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  // P-256 rather than RSA: generation is instant, and every curl/OpenSSL Nix links against accepts it.
  const args = [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "3650",
  ];
  args.push(
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:api.localhost,DNS:localhost,IP:127.0.0.1",
  );
  await $({ quiet: true })`openssl ${args} -keyout ${keyFile} -out ${certFile}`;
  return { certFile, keyFile, cert: await Bun.file(certFile).text(), key: await Bun.file(keyFile).text() };
}

/** The process-wide test certificate, generated on first use into a temp dir of this process. */
export function testCertificate(): Promise<TestCertificate> {
  generating ??= generate();
  return generating;
}
