import { CodedError } from '../shared/coded-error.js';

export type ConfigFileErrorCode =
  | 'CONFIG_CHANGED_DURING_REWRITE'
  | 'CONFIG_NOT_UTF8'
  | 'TLS_CERT_INCOMPLETE'
  | 'OPENSSL_FAILED';

/** A configuration file could not be rewritten or generated (as opposed to being invalid). */
export class ConfigFileError extends CodedError<ConfigFileErrorCode> {}
