/** IPC message the upstream child sends to the runner once it accepts connections. */
export interface UpstreamListening {
  readonly type: 'listening';
  readonly port: number;
}

/** Every message the upstream child may send. */
export type UpstreamMessage = UpstreamListening;
