import { CodedError } from '../shared/coded-error.js';

export type EdgeErrorCode =
  /** The edge cannot build its runtime or app (reported to the supervisor, then exit 1). */
  | 'EDGE_START_FAILED'
  /** The edge cannot bind its address (reported, then exit 1). */
  | 'EDGE_LISTEN_FAILED'
  /** A request arrived in a state that cannot take it (listen before start, after drain...). */
  | 'EDGE_WRONG_STATE'
  /** A new config generation did not build; the previous one stays. */
  | 'CONFIG_REJECTED';

/** A supervisor request the edge could not carry out; its code travels in the reply. */
export class EdgeError extends CodedError<EdgeErrorCode> {}
