/**
 * Two warnings that say nothing to an operator: matrix-bot-sdk 0.8 still depends on the `request` library,
 * which calls the deprecated `util._extend` (DEP0060) when it loads; and node:sqlite, which the state store
 * uses, announces that it is experimental. Every other warning still prints.
 * Imported first by the entry point, so it runs before those modules load.
 */
const print = process.listeners("warning");
process.removeAllListeners("warning");
process.on("warning", (warning: Error & { code?: string }) => {
  if (warning.code === "DEP0060") return;
  if (warning.name === "ExperimentalWarning" && warning.message.startsWith("SQLite")) return;
  for (const listener of print) listener(warning);
});
