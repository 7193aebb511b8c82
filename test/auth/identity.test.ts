import { describe, expect, it } from "vitest";
import { matrixIdToUsername, parseMatrixUserId } from "../../src/auth/identity.js";

const opts = { homeserverDomain: "deuxfleurs.fr" };

describe("matrixIdToUsername", () => {
  it("maps a user of the configured homeserver to their localpart", () => {
    expect(matrixIdToUsername("@alice:deuxfleurs.fr", opts)).toBe("alice");
    expect(matrixIdToUsername("@asso_deuxfleurs.bot-2:deuxfleurs.fr", opts)).toBe("asso_deuxfleurs.bot-2");
  });

  it.each([
    "@alice:evil.example",
    "@alice:deuxfleurs.fr.evil.example",
    "@alice:evil.deuxfleurs.fr",
    "@alice:Deuxfleurs.fr",
    "@alice:DEUXFLEURS.FR",
    "@alice:deuxfleurs.fr:8448",
    "@alice:deuxfleurs.fr ",
    "@alice:",
  ])("maps %j to nobody (another or malformed server)", (mxid) => {
    expect(matrixIdToUsername(mxid, opts)).toBeNull();
  });

  it.each([
    "alice:deuxfleurs.fr",
    "@alice",
    "@:deuxfleurs.fr",
    "#alice:deuxfleurs.fr",
    "!alice:deuxfleurs.fr",
    "@Alice:deuxfleurs.fr",
    "@al ice:deuxfleurs.fr",
    "@*:deuxfleurs.fr",
    "@alice*:deuxfleurs.fr",
    "@al\u0000ice:deuxfleurs.fr",
    "@alicé:deuxfleurs.fr",
    "@a,b:deuxfleurs.fr",
    " @alice:deuxfleurs.fr",
    "",
  ])("rejects %j, which is not a current Matrix user ID", (mxid) => {
    expect(matrixIdToUsername(mxid, opts)).toBeNull();
  });

  it("accepts every character of the current localpart grammar", () => {
    expect(matrixIdToUsername("@a.b_c=d-e/f+g9:deuxfleurs.fr", opts)).toBe("a.b_c=d-e/f+g9");
  });

  it("enforces the 255-byte limit on the whole ID", () => {
    const suffix = ":deuxfleurs.fr";
    const longest = `@${"a".repeat(255 - 1 - suffix.length)}${suffix}`;
    expect(longest).toHaveLength(255);
    expect(matrixIdToUsername(longest, opts)).not.toBeNull();
    expect(matrixIdToUsername(`@a${longest.slice(1)}`, opts)).toBeNull();
  });

  it("lets an explicit mapping win, for this or another server", () => {
    const explicit = {
      "@alice:deuxfleurs.fr": "alice2",
      "@Bob:matrix.org": "bob",
      "@carol:evil.example": "",
    };
    expect(matrixIdToUsername("@alice:deuxfleurs.fr", { ...opts, explicit })).toBe("alice2");
    expect(matrixIdToUsername("@Bob:matrix.org", { ...opts, explicit })).toBe("bob");
    expect(matrixIdToUsername("@bob:matrix.org", { ...opts, explicit })).toBeNull();
    expect(matrixIdToUsername("@carol:evil.example", { ...opts, explicit })).toBeNull();
    expect(matrixIdToUsername("@dave:deuxfleurs.fr", { ...opts, explicit })).toBe("dave");
  });

  it("never reads inherited properties of the explicit mapping", () => {
    const explicit = {};
    expect(matrixIdToUsername("@__proto__:evil.example", { ...opts, explicit })).toBeNull();
    expect(matrixIdToUsername("@constructor:evil.example", { ...opts, explicit })).toBeNull();
  });
});

describe("parseMatrixUserId", () => {
  it("splits at the first colon: the server part may hold a port", () => {
    expect(parseMatrixUserId("@alice:example.org:8448")).toEqual({
      localpart: "alice",
      server: "example.org:8448",
    });
  });

  it("accepts historical localparts but not a colon or non-ASCII in them", () => {
    expect(parseMatrixUserId("@Alice!:example.org")).toEqual({ localpart: "Alice!", server: "example.org" });
    expect(parseMatrixUserId("@alicé:example.org")).toBeNull();
    expect(parseMatrixUserId("@a b:example.org")).toBeNull();
  });
});
