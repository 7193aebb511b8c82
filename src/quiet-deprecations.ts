/**
 * matrix-bot-sdk 0.8 still depends on the `request` library, which calls the deprecated `util._extend`
 * (DEP0060) when it loads. That one warning says nothing to an operator; every other warning still prints.
 * Imported first by the entry point, so it runs before the SDK loads.
 */
const print = process.listeners("warning");
process.removeAllListeners("warning");
process.on("warning", (warning: Error & { code?: string }) => {
  if (warning.code === "DEP0060") return;
  for (const listener of print) listener(warning);
});
