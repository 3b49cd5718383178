/*
 * The original's "Return Block Error" (its docs, session_cookie mode): a login page carries an
 * HTML comment block between `<!-- BEGIN_BLOCK_ERROR -->` and `<!-- END_BLOCK_ERROR -->`,
 * itself commented out so that the page shows no error. When a browser login fails, the
 * gateway answers with the page in which every such block is uncommented (the `<!--` that
 * opens its content and the `-->` that closes it are removed; the markers stay, so scripts
 * can still find the block) and its `{{ error }}` / `{{error}}` placeholders are replaced by
 * the HTML-escaped message. Used by conf/ (a configured page must have a block) and worker/.
 */

export const ERROR_BLOCK_BEGIN = '<!-- BEGIN_BLOCK_ERROR -->';
export const ERROR_BLOCK_END = '<!-- END_BLOCK_ERROR -->';

const PLACEHOLDERS = ['{{ error }}', '{{error}}'] as const;

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** `text` safe inside HTML content and quoted attribute values (& < > " ' escaped). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/**
 * Why `page` cannot show errors, or undefined when it can: it needs at least one block, each
 * BEGIN marker followed by its END marker before the next BEGIN.
 */
export function errorBlockProblem(page: string): string | undefined {
  let at = page.indexOf(ERROR_BLOCK_BEGIN);
  if (at === -1) {
    return `has no error block (${ERROR_BLOCK_BEGIN} ... ${ERROR_BLOCK_END})`;
  }
  while (at !== -1) {
    const end = page.indexOf(ERROR_BLOCK_END, at + ERROR_BLOCK_BEGIN.length);
    const next = page.indexOf(ERROR_BLOCK_BEGIN, at + ERROR_BLOCK_BEGIN.length);
    if (end === -1 || (next !== -1 && next < end)) {
      return `has a ${ERROR_BLOCK_BEGIN} without its ${ERROR_BLOCK_END}`;
    }
    at = page.indexOf(ERROR_BLOCK_BEGIN, end + ERROR_BLOCK_END.length);
  }
  const stray = page.indexOf(ERROR_BLOCK_END);
  if (stray < page.indexOf(ERROR_BLOCK_BEGIN)) {
    return `has a ${ERROR_BLOCK_END} before any ${ERROR_BLOCK_BEGIN}`;
  }
  return undefined;
}

/**
 * `page` with every error block shown and its placeholders replaced by `message`, escaped.
 * Text outside the blocks is left as is (a placeholder there too). A page without a
 * well-formed block comes back unchanged (callers check with {@link errorBlockProblem}).
 */
export function renderErrorBlock(page: string, message: string): string {
  const escaped = escapeHtml(message);
  let out = '';
  let from = 0;
  for (;;) {
    const begin = page.indexOf(ERROR_BLOCK_BEGIN, from);
    if (begin === -1) break;
    const inner = begin + ERROR_BLOCK_BEGIN.length;
    const end = page.indexOf(ERROR_BLOCK_END, inner);
    if (end === -1) break;
    out += page.slice(from, inner) + shown(page.slice(inner, end), escaped);
    from = end;
  }
  return out + page.slice(from);
}

/** A block's content uncommented, placeholders replaced (split/join: no `$&` patterns). */
function shown(content: string, escapedMessage: string): string {
  let text = content;
  // Only a content that is one comment as a whole is uncommented; anything else is kept.
  const open = text.indexOf('<!--');
  const close = text.indexOf('-->', open + 4);
  if (
    open !== -1 &&
    close !== -1 &&
    text.slice(0, open).trim() === '' &&
    text.slice(close + 3).trim() === ''
  ) {
    text = text.slice(0, open) + text.slice(open + 4, close) + text.slice(close + 3);
  }
  for (const placeholder of PLACEHOLDERS) text = text.split(placeholder).join(escapedMessage);
  return text;
}
