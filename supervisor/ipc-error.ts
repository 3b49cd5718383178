import { CodedError } from '../shared/coded-error.js';

export type IpcErrorCode =
  /** No reply within the request's timeout. */
  | 'IPC_TIMEOUT'
  /** The edge exited (or its channel closed) before replying. */
  | 'IPC_EDGE_EXITED'
  /** The edge replied with an error; `edgeCode` holds the edge's own code. */
  | 'IPC_REFUSED'
  /** The edge replied with a value that does not have the expected shape. */
  | 'IPC_BAD_REPLY';

/** A request to an edge that did not get a usable reply. */
export class IpcError extends CodedError<IpcErrorCode> {
  /** For IPC_REFUSED: the code the edge gave (e.g. CONFIG_REJECTED). */
  readonly edgeCode: string | undefined;

  constructor(code: IpcErrorCode, message: string, edgeCode?: string) {
    super(code, message);
    this.edgeCode = edgeCode;
  }
}
