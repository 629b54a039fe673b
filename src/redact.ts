/**
 * Last line of defence for secrets: any text Walsync prints passes through {@link redact},
 * which blanks the values of the environment variables that hold credentials.
 * @module
 */

const secretVariables = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

/** Replaces every known secret value in `text` with `[redacted]`. */
export function redact(text: string): string {
  let out = text;
  for (const name of secretVariables) {
    const value = Deno.env.get(name);
    if (value && value.length >= 4) out = out.split(value).join("[redacted]");
  }
  return out;
}
