import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import blake3 from 'blake3-wasm';
import t from 'tap';
import { deriveKey, deriveTokenKeys, KEY_CONTEXTS, keyedHashInto } from '../shared/token-keys.js';

// The wasm-bindgen module behind blake3-wasm; its linear memory only ever grows.
const wasm = createRequire(import.meta.url)('blake3-wasm/dist/wasm/nodejs/blake3_js.js') as {
  __wasm: { memory: { buffer: ArrayBuffer } };
};
const heapBytes = (): number => wasm.__wasm.memory.buffer.byteLength;

t.test('keyedHashInto agrees with the public blake3-wasm API at every length', async (t) => {
  const key = randomBytes(32);
  const data = randomBytes(1100);
  let mismatches = 0;
  for (let length = 0; length <= data.length; length += 7) {
    for (const outLength of [16, 32]) {
      const out = new Uint8Array(outLength);
      keyedHashInto(key, data.subarray(0, length), out);
      const expected = blake3.createKeyed(key).update(data.subarray(0, length)).digest({
        length: outLength,
      });
      if (!expected.equals(out)) mismatches++;
    }
  }
  t.equal(mismatches, 0);
});

t.test('deriveKey agrees with the public blake3-wasm API', async (t) => {
  const material = Buffer.from('some secret', 'utf8');
  for (const length of [4, 32, 64]) {
    const ours = deriveKey('ProxyAuth test context', material, length);
    const theirs = blake3.deriveKey('ProxyAuth test context', material, { length });
    t.same(Buffer.from(ours), theirs, `${length} bytes`);
  }
});

t.test('each purpose gets its own key', async (t) => {
  t.equal(new Set(Object.values(KEY_CONTEXTS)).size, 4, 'four distinct contexts');
  const keys = deriveTokenKeys('one secret');
  const hexes = [keys.encryptionKey, keys.macKey, keys.tokenIdKey].map((k) =>
    Buffer.from(k).toString('hex'),
  );
  t.equal(new Set(hexes).size, 3);
  for (const key of [keys.encryptionKey, keys.macKey, keys.tokenIdKey]) t.equal(key.length, 32);
  t.equal(
    keys.keyId,
    Buffer.from(deriveKey(KEY_CONTEXTS.keyId, Buffer.from('one secret'), 4)).readUInt32BE(0),
  );
  t.not(deriveTokenKeys('another secret').keyId, keys.keyId);
});

// Regression: blake3-wasm's keyedHash()/deriveKey() never free their hasher, which grew the
// WebAssembly heap by ~1.9 kB per call (385 MB after 200k calls, never returned).
t.test('hashing does not grow the WebAssembly heap', async (t) => {
  const key = randomBytes(32);
  const data = randomBytes(120);
  const out = new Uint8Array(16);
  for (let i = 0; i < 1000; i++) keyedHashInto(key, data, out);
  const before = heapBytes();
  for (let i = 0; i < 50_000; i++) keyedHashInto(key, data, out);
  for (let i = 0; i < 1000; i++) deriveTokenKeys('secret');
  t.equal(heapBytes(), before);
});
