import t from 'tap';
import {
  ERROR_BLOCK_BEGIN,
  ERROR_BLOCK_END,
  errorBlockProblem,
  escapeHtml,
  renderErrorBlock,
} from '../shared/error-block.js';

// The example of the original's docs ("Return Block Error"), before and after.
const DOCS_PAGE = `<html><body>
<form></form>
<!-- BEGIN_BLOCK_ERROR -->
<!--
    <div id="error_display" class="col-lg-5">
      {{ error }}
    </div>
    -->
<!-- END_BLOCK_ERROR -->
</body></html>`;

t.test('the docs example: the block is uncommented, the markers stay', async (t) => {
  t.equal(
    renderErrorBlock(DOCS_PAGE, 'Invalid or expired token.'),
    `<html><body>
<form></form>
<!-- BEGIN_BLOCK_ERROR -->

    <div id="error_display" class="col-lg-5">
      Invalid or expired token.
    </div>
    
<!-- END_BLOCK_ERROR -->
</body></html>`,
  );
});

t.test('both placeholder spellings, every occurrence', async (t) => {
  const page = `${ERROR_BLOCK_BEGIN}<!-- <p>{{ error }}</p><i>{{error}}</i><b>{{ error }}</b> -->${ERROR_BLOCK_END}`;
  t.equal(
    renderErrorBlock(page, 'No'),
    `${ERROR_BLOCK_BEGIN} <p>No</p><i>No</i><b>No</b> ${ERROR_BLOCK_END}`,
  );
});

t.test('the message is escaped, and $ patterns are taken literally', async (t) => {
  const page = `${ERROR_BLOCK_BEGIN}<!--<p title="{{error}}">{{ error }}</p>-->${ERROR_BLOCK_END}`;
  const message = `<script>alert("x")</script> & 'q' $& $1 $$`;
  const out = renderErrorBlock(page, message);
  const escaped =
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; $&amp; $1 $$';
  t.equal(out, `${ERROR_BLOCK_BEGIN}<p title="${escaped}">${escaped}</p>${ERROR_BLOCK_END}`);
  t.notMatch(out, /<script>/);
  t.equal(escapeHtml(`&<>"'`), '&amp;&lt;&gt;&quot;&#39;');
  t.equal(escapeHtml('plain text'), 'plain text');
});

t.test('several blocks are each rendered; text outside them is left alone', async (t) => {
  const page = `<h1>{{ error }}</h1>
${ERROR_BLOCK_BEGIN}<!--<p>A {{ error }}</p>-->${ERROR_BLOCK_END}
<main>middle</main>
${ERROR_BLOCK_BEGIN}
<!--
<div>B {{error}}</div>
-->
${ERROR_BLOCK_END}
<footer><!-- a comment that stays --></footer>`;
  const out = renderErrorBlock(page, 'Bad');
  t.equal(
    out,
    `<h1>{{ error }}</h1>
${ERROR_BLOCK_BEGIN}<p>A Bad</p>${ERROR_BLOCK_END}
<main>middle</main>
${ERROR_BLOCK_BEGIN}

<div>B Bad</div>

${ERROR_BLOCK_END}
<footer><!-- a comment that stays --></footer>`,
  );
});

t.test('a block that is not one comment as a whole keeps its comments', async (t) => {
  const open = `${ERROR_BLOCK_BEGIN}<div>{{ error }}</div>${ERROR_BLOCK_END}`;
  t.equal(renderErrorBlock(open, 'E'), `${ERROR_BLOCK_BEGIN}<div>E</div>${ERROR_BLOCK_END}`);
  const two = `${ERROR_BLOCK_BEGIN}<!-- a --><div>{{ error }}</div><!-- b -->${ERROR_BLOCK_END}`;
  t.equal(
    renderErrorBlock(two, 'E'),
    `${ERROR_BLOCK_BEGIN}<!-- a --><div>E</div><!-- b -->${ERROR_BLOCK_END}`,
    'uncommenting from the first <!-- to the last --> would break the page',
  );
});

t.test('a page without a block comes back unchanged', async (t) => {
  const page = '<p>{{ error }}</p><!-- x -->';
  t.equal(renderErrorBlock(page, 'E'), page);
  const unclosed = `${ERROR_BLOCK_BEGIN}<!-- {{ error }} -->`;
  t.equal(renderErrorBlock(unclosed, 'E'), unclosed);
});

t.test('errorBlockProblem: at least one well-formed block', async (t) => {
  t.equal(errorBlockProblem(DOCS_PAGE), undefined);
  t.equal(
    errorBlockProblem(
      `${ERROR_BLOCK_BEGIN}a${ERROR_BLOCK_END} ${ERROR_BLOCK_BEGIN}b${ERROR_BLOCK_END}`,
    ),
    undefined,
    'several blocks',
  );
  t.match(errorBlockProblem('<html></html>'), /has no error block/);
  t.match(errorBlockProblem(`x ${ERROR_BLOCK_END}`), /has no error block/);
  t.match(errorBlockProblem(`${ERROR_BLOCK_BEGIN} x`), /without its/);
  t.match(
    errorBlockProblem(`${ERROR_BLOCK_BEGIN} ${ERROR_BLOCK_BEGIN} ${ERROR_BLOCK_END}`),
    /without its/,
    'a second BEGIN before the first END',
  );
  t.match(
    errorBlockProblem(`${ERROR_BLOCK_END} ${ERROR_BLOCK_BEGIN} ${ERROR_BLOCK_END}`),
    /before any/,
  );
  t.match(
    errorBlockProblem(`${ERROR_BLOCK_BEGIN}a${ERROR_BLOCK_END} ${ERROR_BLOCK_BEGIN}`),
    /without its/,
    'the second block is not closed',
  );
});
