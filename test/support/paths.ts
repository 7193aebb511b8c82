export { repoRoot } from "../../src/paths.js";
