import ms from "ms";
import { z } from "zod";

/** A duration in config: "30s", "15m", "1h", "2d" or a number of milliseconds. Parsed to milliseconds. */
export const duration = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === "number") return value;
  const parsed = ms(value as ms.StringValue);
  if (typeof parsed !== "number" || !Number.isFinite(parsed) || parsed < 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected a duration such as "30s", "15m" or "1h", got "${value}"`,
    });
    return z.NEVER;
  }
  return parsed;
});

export function formatDuration(milliseconds: number): string {
  if (milliseconds < 1000) return `${Math.round(milliseconds)} ms`;
  return ms(Math.round(milliseconds), { long: true });
}
