import { CodedError } from '../shared/coded-error.js';

export type FleetErrorCode =
  /** An edge of a start or a roll did not get to listening; the others were stopped. */
  | 'EDGE_START_FAILED'
  /** No edge applied a new config generation; the previous one stays everywhere. */
  | 'CONFIG_NOT_APPLIED';

/** The fleet could not carry out a start, roll or reload. */
export class FleetError extends CodedError<FleetErrorCode> {}
