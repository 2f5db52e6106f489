// The Python that runs the repository's tfuq for the tests: TFUQ_PYTHON, else the repository's
// .venv (what .ci/run makes), else python3. Commands run from the repository root, so its tfuq is imported.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO = resolve(__dirname, "..", "..");

export function python(): string {
  if (process.env.TFUQ_PYTHON) return process.env.TFUQ_PYTHON;
  const venv = join(REPO, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}
