import { CodedError } from '../shared/coded-error.js';
import { formatKeyPath } from './key-path.js';

/** Where one JSON value sits in the source text: `text.slice(start, end)` is its token(s). */
export interface JsonSpan {
  start: number;
  end: number;
  type: 'object' | 'array' | 'string' | 'number' | 'literal';
}

/** A JSON syntax error with its 1-based position. */
export class JsonSyntaxError extends CodedError<'JSON_SYNTAX'> {
  readonly offset: number;
  readonly line: number;
  readonly column: number;

  constructor(text: string, offset: number, message: string) {
    const { line, column } = lineAndColumn(text, offset);
    super('JSON_SYNTAX', `line ${line}, column ${column}: ${message}`);
    this.offset = offset;
    this.line = line;
    this.column = column;
  }
}

const MAX_DEPTH = 256;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;

/**
 * Locates every value of a strict JSON document (RFC 8259; a leading BOM is tolerated). Returns,
 * for each key path (`users[0].password`, `(root)`), the spans of the values found there, in
 * source order (several when an object repeats a key). Throws JsonSyntaxError.
 */
export function scanJson(text: string): Map<string, JsonSpan[]> {
  return new JsonScanner(text).scan();
}

/** 1-based line and column (in UTF-16 units) of `offset` in `text`. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

class JsonScanner {
  readonly #text: string;
  readonly #spans = new Map<string, JsonSpan[]>();
  #pos = 0;

  constructor(text: string) {
    this.#text = text;
  }

  scan(): Map<string, JsonSpan[]> {
    if (this.#text.charCodeAt(0) === 0xfeff) this.#pos = 1;
    this.#value([]);
    this.#skipWhitespace();
    if (this.#pos < this.#text.length) this.#fail('unexpected data after the JSON value');
    return this.#spans;
  }

  #value(path: PropertyKey[]): void {
    if (path.length > MAX_DEPTH) this.#fail('nested too deeply');
    this.#skipWhitespace();
    const start = this.#pos;
    const type = this.#token(path);
    const key = formatKeyPath(path);
    const list = this.#spans.get(key) ?? [];
    list.push({ start, end: this.#pos, type });
    this.#spans.set(key, list);
  }

  #token(path: PropertyKey[]): JsonSpan['type'] {
    const c = this.#text[this.#pos];
    if (c === '{') return this.#object(path);
    if (c === '[') return this.#array(path);
    if (c === '"') return this.#string();
    for (const word of ['true', 'false', 'null']) {
      if (this.#text.startsWith(word, this.#pos)) {
        this.#pos += word.length;
        return 'literal';
      }
    }
    NUMBER.lastIndex = this.#pos;
    if (NUMBER.test(this.#text)) {
      this.#pos = NUMBER.lastIndex;
      return 'number';
    }
    return this.#fail(c === undefined ? 'unexpected end of input' : 'expected a JSON value');
  }

  #object(path: PropertyKey[]): 'object' {
    this.#pos++;
    if (this.#peekAfterWhitespace() === '}') {
      this.#pos++;
      return 'object';
    }
    for (;;) {
      this.#skipWhitespace();
      if (this.#text[this.#pos] !== '"') this.#fail('expected a string key');
      const keyStart = this.#pos;
      this.#string();
      const key = JSON.parse(this.#text.slice(keyStart, this.#pos)) as string;
      this.#expect(':');
      this.#value([...path, key]);
      if (this.#expectOneOf(',', '}') === '}') return 'object';
    }
  }

  #array(path: PropertyKey[]): 'array' {
    this.#pos++;
    if (this.#peekAfterWhitespace() === ']') {
      this.#pos++;
      return 'array';
    }
    for (let i = 0; ; i++) {
      this.#value([...path, i]);
      if (this.#expectOneOf(',', ']') === ']') return 'array';
    }
  }

  #string(): 'string' {
    const text = this.#text;
    this.#pos++;
    for (;;) {
      const code = text.charCodeAt(this.#pos);
      if (Number.isNaN(code)) this.#fail('unterminated string');
      if (code === 0x22) {
        this.#pos++;
        return 'string';
      }
      if (code < 0x20) this.#fail('control character in string');
      if (code === 0x5c) {
        ESCAPE.lastIndex = this.#pos;
        if (!ESCAPE.test(text)) this.#fail('invalid escape in string');
        this.#pos = ESCAPE.lastIndex;
      } else {
        this.#pos++;
      }
    }
  }

  #expect(char: string): void {
    this.#skipWhitespace();
    if (this.#text[this.#pos] !== char) this.#fail(`expected "${char}"`);
    this.#pos++;
  }

  #expectOneOf(a: string, b: string): string {
    this.#skipWhitespace();
    const c = this.#text[this.#pos];
    if (c !== a && c !== b) this.#fail(`expected "${a}" or "${b}"`);
    this.#pos++;
    return c as string;
  }

  #peekAfterWhitespace(): string | undefined {
    this.#skipWhitespace();
    return this.#text[this.#pos];
  }

  #skipWhitespace(): void {
    const text = this.#text;
    for (;;) {
      const c = text.charCodeAt(this.#pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.#pos++;
    }
  }

  #fail(message: string): never {
    throw new JsonSyntaxError(this.#text, this.#pos, message);
  }
}
