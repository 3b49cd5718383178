import { readFileSync } from 'node:fs';
import { xchacha20 } from '@noble/ciphers/chacha.js';
import blake3 from 'blake3-wasm';
import t from 'tap';
import { TokenCodec } from '../shared/token-codec.js';

interface Vector {
  description: string;
  secret: string;
  username: string;
  iat: number;
  exp: number;
  jti: string;
  nonce: string;
  key_id: string;
  token: string;
  token_id: string;
}

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/token-vectors.json', import.meta.url), 'utf8'),
) as { format_version: number; vectors: Vector[] };

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

// The layout of docs/token-format.md, rebuilt from the public blake3-wasm API and Node's own
// base64url: if the codec and this disagree, one of them no longer follows the document.
function referenceToken(v: Vector): { token: string; keyId: string; tokenId: string } {
  const derive = (purpose: string, length = 32): Buffer =>
    blake3.deriveKey(`ProxyAuth 2026 token ${purpose} v1`, Buffer.from(v.secret, 'utf8'), {
      length,
    });
  const keyIdBytes = derive('key id', 4);
  const name = Buffer.from(v.username, 'utf8');
  const claims = Buffer.alloc(33 + name.length);
  claims.writeBigUInt64BE(BigInt(v.iat), 0);
  claims.writeBigUInt64BE(BigInt(v.exp), 8);
  Buffer.from(v.jti, 'hex').copy(claims, 16);
  claims[32] = name.length;
  name.copy(claims, 33);
  const nonce = hex(v.nonce);
  const ciphertext = xchacha20(derive('encryption'), nonce, claims);
  const signed = Buffer.concat([Buffer.from([1]), keyIdBytes, nonce, ciphertext]);
  const tag = blake3.createKeyed(derive('mac')).update(signed).digest({ length: 16 });
  const tokenId = blake3
    .createKeyed(derive('id'))
    .update(Buffer.from(v.jti, 'hex'))
    .digest({ length: 16 });
  return {
    token: Buffer.concat([signed, tag]).toString('base64url'),
    keyId: keyIdBytes.toString('hex'),
    tokenId: tokenId.toString('base64url'),
  };
}

t.equal(fixture.format_version, 1);
t.ok(fixture.vectors.length >= 5, 'the fixture holds the committed vectors');

for (const v of fixture.vectors) {
  t.test(v.description, async (t) => {
    const codec = new TokenCodec(v.secret);
    t.equal(codec.keyId.toString(16).padStart(8, '0'), v.key_id, 'key id');

    const issued = codec.issueDeterministic(v.username, v.iat, v.exp, hex(v.jti), hex(v.nonce));
    t.equal(issued.token, v.token, 'issueDeterministic reproduces the committed token');
    t.equal(codec.tokenId(issued.claims), v.token_id, 'token id');

    const verified = codec.verify(v.token, v.iat);
    t.same(verified, {
      ok: true,
      claims: {
        sub: v.username,
        iat: v.iat,
        exp: v.exp,
        jti: hex(v.jti),
        keyId: Number.parseInt(v.key_id, 16),
      },
    });
    t.same(codec.verify(v.token, v.exp), { ok: false, reason: 'expired' });

    const reference = referenceToken(v);
    t.equal(reference.token, v.token, 'the documented layout gives the same token');
    t.equal(reference.keyId, v.key_id);
    t.equal(reference.tokenId, v.token_id);
  });
}
