"use strict";
// matrix-bot-sdk 0.8 requires @matrix-org/matrix-sdk-crypto-nodejs when it loads, and that package's
// native binary is normally downloaded by an install script. This stand-in is installed in its place
// (see "overrides" in the root package.json): it re-exports the real binding when one is installed
// under the name below, and otherwise exports classes that throw as soon as encryption is used.
const REAL_BINDING = "@matrix-org/matrix-sdk-crypto-nodejs-linux-x64-gnu";
const USED_BY_SDK = [
  "Attachment",
  "DeviceId",
  "DeviceLists",
  "EncryptedAttachment",
  "EncryptionSettings",
  "OlmMachine",
  "RoomId",
  "UserId",
  "EncryptionAlgorithm",
  "HistoryVisibility",
  "StoreType",
  "RequestType",
];

function loadReal() {
  try {
    return require(process.env.MAJORDOME_CRYPTO_BINDING || REAL_BINDING);
  } catch {
    return null;
  }
}

const real = loadReal();
const unavailable =
  "Matrix end-to-end encryption needs the native binding " +
  REAL_BINDING +
  ", which is not installed (its download happens at install time). Install it, or set matrix.encryption: false.";

function standIn(name) {
  return class {
    constructor() {
      throw new Error(`${name}: ${unavailable}`);
    }
    static [Symbol.hasInstance]() {
      return false;
    }
  };
}

if (real) {
  module.exports = real;
  module.exports.cryptoAvailable = true;
} else {
  for (const name of USED_BY_SDK) module.exports[name] = standIn(name);
  module.exports.cryptoAvailable = false;
  module.exports.unavailableReason = unavailable;
}
