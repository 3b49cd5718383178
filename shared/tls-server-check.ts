import uws from 'uWebSockets.js';

/**
 * Whether uWebSockets.js, which serves the gateway's TLS, can build a server from this pair:
 * its TLS library accepts fewer key types than node:crypto parses (RSA-PSS keys and the
 * secp256k1 curve, measured, fail with "App construction failed"). The app is built and closed
 * at once, without listening. Checking with the server's own code is what keeps
 * `check-config` and `run` from disagreeing.
 */
export function tlsServerAccepts(certFile: string, keyFile: string): boolean {
  try {
    uws.SSLApp({ cert_file_name: certFile, key_file_name: keyFile }).close();
    return true;
  } catch {
    // uWS's only failure here is a pair it cannot load; it gives no reason.
    return false;
  }
}
