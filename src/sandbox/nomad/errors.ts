/**
 * Nomad's HTTP errors are plain text with a status code (command/agent/http.go `wrap`): errors the
 * agent codes itself (400/404/405), "Permission denied" as 403, and anything else from the RPC layer
 * as 500 with the error text as the body.
 */
export class NomadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "NomadError";
  }
}

export const badRequest = (message: string): NomadError => new NomadError(400, message);
export const notFound = (message: string): NomadError => new NomadError(404, message);
export const serverError = (message: string): NomadError => new NomadError(500, message);
export const permissionDenied = (): NomadError => new NomadError(403, "Permission denied");
/** ErrInvalidMethod in command/agent/http.go. */
export const invalidMethod = (): NomadError => new NomadError(405, "Invalid method");

/** go-multierror's Error() text, as RPC validation failures reach the HTTP body. */
export function multiError(messages: readonly string[]): NomadError {
  const points = messages.map((m) => `* ${m}`).join("\n\t");
  const head = messages.length === 1 ? "1 error occurred" : `${messages.length} errors occurred`;
  return serverError(`${head}:\n\t${points}\n\n`);
}
