/**
 * Last line of defence for secrets: any text Walsync prints passes through {@link redact},
 * which blanks the values of the environment variables that hold credentials.
 * @module
 */

const secretVariables = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

const registered = new Set<string>();

/** Adds a secret that did not come from the environment (e.g. from a config file) to the list. */
export function registerSecret(value: string): void {
  if (value.length >= 4) registered.add(value);
}

/**
 * Replaces every known secret value in `text` with `[redacted]`.
 * @example
 * ```ts
 * registerSecret(config.signingKey);
 * console.error(redact(`signing with ${config.signingKey}`)); // "signing with [redacted]"
 * ```
 */
export function redact(text: string): string {
  let out = text;
  for (const value of registered) out = out.split(value).join("[redacted]");
  for (const name of secretVariables) {
    const value = Deno.env.get(name);
    if (value && value.length >= 4) out = out.split(value).join("[redacted]");
  }
  return out;
}
