import ms from "ms";

/** A typed argument: `parse` turns the raw word into a value or says what was expected. */
export interface ArgType<T> {
  /** Shown in usage lines and error messages, e.g. "job name", "count". */
  readonly label: string;
  parse(raw: string): { ok: true; value: T } | { ok: false; expected: string };
}

const ok = <T>(value: T) => ({ ok: true as const, value });
const fail = (expected: string) => ({ ok: false as const, expected });

export const text: ArgType<string> = {
  label: "text",
  parse: (raw) => (raw.length > 0 && raw.length <= 1000 ? ok(raw) : fail("text of 1 to 1000 characters")),
};

/** A name safe to pass on to any backend: validated here, before anything else sees it. */
export function name(label: string, pattern: RegExp, rule: string, maxLength = 63): ArgType<string> {
  return {
    label,
    parse: (raw) => (raw.length <= maxLength && pattern.test(raw) ? ok(raw) : fail(rule)),
  };
}

export function integer(label: string, min: number, max: number): ArgType<number> {
  return {
    label,
    parse: (raw) => {
      if (!/^-?\d+$/.test(raw)) return fail(`a whole number from ${min} to ${max}`);
      const value = Number(raw);
      return value >= min && value <= max ? ok(value) : fail(`a whole number from ${min} to ${max}`);
    },
  };
}

export function oneOf<const T extends string>(label: string, values: readonly T[]): ArgType<T> {
  return {
    label,
    parse: (raw) =>
      (values as readonly string[]).includes(raw) ? ok(raw as T) : fail(`one of ${values.join(", ")}`),
  };
}

export function durationArg(label: string, maxMs: number): ArgType<number> {
  return {
    label,
    parse: (raw) => {
      const value = /^\d+[smhd]$/.test(raw) ? ms(raw as ms.StringValue) : undefined;
      return typeof value === "number" && value > 0 && value <= maxMs
        ? ok(value)
        : fail(`a duration such as 30m, 1h or 2d, at most ${ms(maxMs, { long: true })}`);
    },
  };
}
