import { CodedError } from '../shared/coded-error.js';

/** One problem found in a configuration file. */
export interface ConfigIssue {
  /** Path of the file the issue was found in, as given to the parser or loader. */
  file: string;
  /**
   * Dotted key path such as `users[1].allow[0]` or `routes[2].filters.allow[0].pattern`;
   * `(root)` for the document itself, `(syntax)` for a JSON/YAML syntax error, `(file)` for the
   * file as a whole (missing, unreadable, or a TLS certificate or key that cannot be used).
   */
  key: string;
  message: string;
  /** 1-based position, set for syntax errors. */
  line?: number;
  column?: number;
}

/** Thrown when config.json or routes.yml is unreadable or invalid; carries every issue found. */
export class ConfigError extends CodedError<'CONFIG_INVALID'> {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super('CONFIG_INVALID', `invalid configuration:\n${formatIssues(issues)}`);
    this.issues = issues;
  }

  /** One line per issue: `<file>: <key>: <message>`. */
  format(): string {
    return formatIssues(this.issues);
  }
}

function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `${i.file}: ${i.key}: ${i.message}`).join('\n');
}
