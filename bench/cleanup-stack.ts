/** A cleanup step: stops a process, removes a directory, ... */
export type CleanupStep = () => Promise<void> | void;

/**
 * Steps run once, last added first (services stop before the directory they live in is
 * removed). A failing step is reported and does not stop the others.
 */
export class CleanupStack {
  readonly #steps: { readonly label: string; readonly step: CleanupStep }[] = [];
  #running: Promise<void> | undefined;

  /** Registers a step to run at {@link CleanupStack.run}. */
  add(label: string, step: CleanupStep): void {
    this.#steps.push({ label, step });
  }

  /** Runs every step once; later calls wait for the first. */
  run(): Promise<void> {
    this.#running ??= this.#runAll();
    return this.#running;
  }

  async #runAll(): Promise<void> {
    for (let entry = this.#steps.pop(); entry; entry = this.#steps.pop()) {
      try {
        await entry.step();
      } catch (err) {
        console.error(`cleanup: ${entry.label} failed: ${(err as Error).message}`);
      }
    }
  }
}
