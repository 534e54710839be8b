/** The JSON value(s) of a command's output `text`: one JSON text (`status --json`, indented) or one a line (JSONL, `logs --json`). */
export function jsonValues(text: string): unknown[] {
  try {
    return [JSON.parse(text)];
  } catch {
    return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as unknown);
  }
}
