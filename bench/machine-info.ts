import { cpus, loadavg, release, totalmem } from 'node:os';

/** The machine a report was measured on. */
export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  /** 1, 5 and 15 minute load averages when the bench started. */
  readonly loadavg: readonly number[];
}

/** Reads the machine's description; call it before any service starts (for loadavg). */
export function collectMachineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${process.platform} ${release()}`,
    node: process.version,
    loadavg: loadavg().map((n) => Math.round(n * 100) / 100),
  };
}
