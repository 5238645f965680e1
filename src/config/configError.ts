/** A setting with a bad value: its message is the one line the node stops with (exit code 2). */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`invalid ${variable}: ${detail}`);
  }
}
