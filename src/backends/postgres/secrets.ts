/**
 * Passwords of the roles majordome creates: generated here, and turned into a SCRAM-SHA-256 verifier
 * before they are sent, so the plain password never travels to the server nor lands in its logs
 * (PostgreSQL stores a verifier it is given as is, like psql's \password does).
 */
import { createHash, createHmac, pbkdf2, randomBytes, randomInt } from "node:crypto";
import { promisify } from "node:util";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const PASSWORD_LENGTH = 32;
const SCRAM_ITERATIONS = 4096;
const SALT_BYTES = 16;

/** 32 characters from [A-Za-z0-9] (about 190 bits): safe in URLs, shells and connection strings. */
export function generatePassword(): string {
  let password = "";
  for (let i = 0; i < PASSWORD_LENGTH; i++) password += ALPHABET[randomInt(ALPHABET.length)];
  return password;
}

/**
 * Printable ASCII only: SASLprep leaves such passwords unchanged, so the verifier computed here is the
 * one the server would compute. The message never contains the password.
 */
export function passwordProblem(password: string): string | null {
  if (password.length < 12 || password.length > 256) return "a password has 12 to 256 characters";
  if (!/^[\x20-\x7e]+$/.test(password)) return "a password uses printable ASCII characters only";
  return null;
}

const derive = promisify(pbkdf2);

/** The verifier PostgreSQL stores for SCRAM-SHA-256 (RFC 5802, RFC 7677). */
export async function scramVerifier(
  password: string,
  salt: Buffer = randomBytes(SALT_BYTES),
): Promise<string> {
  const salted = await derive(password, salt, SCRAM_ITERATIONS, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  const b64 = (bytes: Buffer) => bytes.toString("base64");
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}
