// The CSRF placeholder scan: both spellings, split across any chunk boundary, near-misses left
// alone, the token minted once and only when needed, and nothing but a short tail held back.

import t from 'tap';
import { PlaceholderReplacer } from '../worker/html-placeholders.js';

const TOKEN = 'T'.repeat(44);
const SPELLINGS = ['{{ csrf_token }}', '{{csrf_token}}'];

/** Runs `chunks` through a replacer; returns the output and how many tokens were minted. */
function run(chunks: readonly string[], token = TOKEN): { out: string; minted: number } {
  let minted = 0;
  const r = new PlaceholderReplacer(() => {
    minted++;
    return token;
  });
  const parts = chunks.flatMap((c) => r.push(Buffer.from(c, 'latin1')));
  parts.push(r.end());
  return { out: Buffer.concat(parts).toString('latin1'), minted };
}

/** What the page must become: every placeholder replaced, left to right. */
function expected(page: string, token = TOKEN): string {
  return page.replaceAll(SPELLINGS[0]!, token).replaceAll(SPELLINGS[1]!, token);
}

t.test('every split of a placeholder across two chunks', async (t) => {
  for (const p of SPELLINGS) {
    const page = `<input value="${p}">`;
    for (let i = 0; i <= page.length; i++) {
      const { out, minted } = run([page.slice(0, i), page.slice(i)]);
      t.equal(out, `<input value="${TOKEN}">`, `${p} split at ${i}`);
      t.equal(minted, 1);
    }
  }
});

t.test('every split of a placeholder across three chunks', async (t) => {
  let cases = 0;
  for (const p of SPELLINGS) {
    const page = `a${p}b`;
    for (let i = 0; i <= page.length; i++) {
      for (let j = i; j <= page.length; j++) {
        const { out } = run([page.slice(0, i), page.slice(i, j), page.slice(j)]);
        if (out !== `a${TOKEN}b`) t.fail(`${p} split at ${i} and ${j}: ${out}`);
        cases++;
      }
    }
  }
  t.equal(cases, (19 * 20) / 2 + (17 * 18) / 2, 'every pair of split points, both spellings');
});

t.test('one byte at a time', async (t) => {
  for (const p of SPELLINGS) {
    const page = `{${p}}{{ x }}{`;
    t.equal(run([...page]).out, `{${TOKEN}}{{ x }}{`, p);
  }
});

t.test('near-misses stay as they are, and mint nothing', async (t) => {
  const misses = [
    '{{ csrf_token }',
    '{{  csrf_token }}',
    '{{ csrf_token  }}',
    '{{csrf_token }}',
    '{{ csrf_token}}',
    '{{ CSRF_TOKEN }}',
    '{ { csrf_token }}',
    '{{ csrf-token }}',
    '{{\tcsrf_token\t}}',
    '{{ csrf_tokens }}',
    '{{',
    '{',
    '{{ csrf_tok',
  ];
  for (const miss of misses) {
    const page = `x${miss}y`;
    for (let i = 0; i <= page.length; i++) {
      const { out, minted } = run([page.slice(0, i), page.slice(i)]);
      t.equal(out, page, `${JSON.stringify(miss)} split at ${i}`);
      t.equal(minted, 0);
    }
  }
  // Held back at the end of a chunk, then released when the body ends.
  t.equal(run(['abc{{ csrf_tok']).out, 'abc{{ csrf_tok');
  t.equal(run(['abc{']).out, 'abc{');
});

t.test('a replacement is pieces: views of the chunk and the token, not a copy', async (t) => {
  const chunk = Buffer.from('<p>{{ csrf_token }}</p>');
  const out = new PlaceholderReplacer(() => TOKEN).push(chunk);
  t.same(
    out.map((b) => b.toString()),
    ['<p>', TOKEN, '</p>'],
  );
  t.equal(out[0]!.buffer, chunk.buffer, 'a view of the chunk');
});

t.test('several placeholders share one token; overlapping braces', async (t) => {
  const page = `${SPELLINGS[0]}-${SPELLINGS[1]}-{${SPELLINGS[1]}}-{{${SPELLINGS[0]}${SPELLINGS[0]}`;
  for (let i = 0; i <= page.length; i += 3) {
    const { out, minted } = run([page.slice(0, i), page.slice(i)]);
    t.equal(out, expected(page), `split at ${i}`);
    t.equal(minted, 1, 'minted once for the whole page');
  }
  t.equal(run(['{{{ csrf_token }}}']).out, `{${TOKEN}}`);
  t.equal(run(['{{{{csrf_token}}']).out, `{{${TOKEN}`);
});

t.test('a page without a placeholder: the same bytes, the same buffers, no token', async (t) => {
  let minted = 0;
  const r = new PlaceholderReplacer(() => {
    minted++;
    return TOKEN;
  });
  const chunk = Buffer.from('<p>{{ name }} and { braces } {{ csrf }}</p>');
  const out = r.push(chunk);
  t.equal(out.length, 1);
  t.equal(out[0], chunk, 'passed on as the same Buffer');
  t.equal(r.end().length, 0);
  t.equal(minted, 0);
  t.equal(run([]).out, '', 'an empty body stays empty');
});

t.test('the token is any string; the empty string removes the placeholder', async (t) => {
  t.equal(run(['a{{ csrf_token }}b'], '').out, 'ab');
});

t.test('random pages and random chunkings agree with a whole-page replace', async (t) => {
  const pieces = [...SPELLINGS, '{', '{{', '}}', ' ', 'csrf_token', 'x', '{{ csrf_tok', 'en }}'];
  let seed = 42;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return (seed >>> 16) % n;
  };
  for (let round = 0; round < 500; round++) {
    let page = '';
    const n = 1 + rand(20);
    for (let i = 0; i < n; i++) page += pieces[rand(pieces.length)];
    const chunks: string[] = [];
    for (let at = 0; at < page.length; ) {
      // Empty chunks too (undici never sends one, but nothing may break on it).
      const len = rand(8);
      chunks.push(page.slice(at, at + len));
      at += len;
    }
    const { out } = run(chunks);
    if (out !== expected(page)) t.fail(`${JSON.stringify(chunks)} -> ${JSON.stringify(out)}`);
  }
  t.pass('500 pages');
});

t.test('a 1 MiB page streams: at most 15 bytes are ever held back', async (t) => {
  const row = '<tr><td>{{ name }}</td><td>{ x: 1 }</td></tr>\n';
  let page = `<form><input name="csrf_token" value="${SPELLINGS[0]}">`;
  while (page.length < 1024 * 1024) page += row;
  page += `<input value="${SPELLINGS[1]}"></form>{`;
  const bytes = Buffer.from(page);
  const r = new PlaceholderReplacer(() => TOKEN);
  let maxHeld = 0;
  let answered = 0;
  const out: Buffer[] = [];
  // Chunks of 16 KiB - 7 bytes, so that boundaries fall everywhere in the rows.
  const size = 16 * 1024 - 7;
  for (let at = 0; at < bytes.length; at += size) {
    const pieces = r.push(bytes.subarray(at, at + size));
    if (pieces.length > 0) answered++;
    out.push(...pieces);
    maxHeld = Math.max(maxHeld, r.heldBytes);
  }
  out.push(r.end());
  t.equal(answered, Math.ceil(bytes.length / size), 'every chunk gave output at once');
  t.equal(Buffer.concat(out).toString(), expected(page));
  t.ok(maxHeld <= 15, `held back at most ${maxHeld} bytes`);
});
