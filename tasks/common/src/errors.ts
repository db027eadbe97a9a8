/** A task input that cannot be used. The message names the input and says what to do. */
export class InputError extends Error {
  constructor(readonly input: string, message: string) {
    super(`Input '${input}': ${message}`);
    this.name = 'InputError';
  }
}

/** A failure that makes the whole run impossible (discovery, authorization), reported as one clear line. */
export class RunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
