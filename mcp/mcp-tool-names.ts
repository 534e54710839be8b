/**
 * MCP tool names (1-128 of A-Z a-z 0-9 _ - ., case-sensitive, e.g. `createIssue`) as Warden tool
 * names (lower-case dot-separated words), and back. The mapping is a pure, injective function,
 * so `fromWardenToolPart(toWardenToolPart(n)) === n` for every name and two MCP names never share
 * a Warden name:
 *
 * - `a`-`z`, `0`-`9`, `_` stay as they are;
 * - an upper-case letter becomes `-` and the letter in lower case (`createIssue` → `create-issue`);
 * - `-` becomes `--`, `.` becomes `-_`;
 * - a name that would not start with a lower-case letter is prefixed with `q-0` (a sequence no
 *   other rule produces).
 *
 * Pure (no Node imports): the workflow maps names too.
 */

const MCP_TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const PREFIX = 'q-0';

/** Whether `name` is a tool name MCP allows. */
export function isMcpToolName(name: string): boolean {
  return MCP_TOOL_NAME.test(name);
}

/** The Warden form of an MCP tool name (without the server); TypeError for a name MCP does not allow. */
export function toWardenToolPart(mcpName: string): string {
  if (!isMcpToolName(mcpName)) throw new TypeError(`not an MCP tool name: ${JSON.stringify(mcpName)}`);
  let out = '';
  for (const ch of mcpName) {
    if (ch >= 'A' && ch <= 'Z') out += `-${ch.toLowerCase()}`;
    else if (ch === '-') out += '--';
    else if (ch === '.') out += '-_';
    else out += ch;
  }
  return /^[a-z]/.test(out) ? out : `${PREFIX}${out}`;
}

/** The MCP name a Warden tool part came from; undefined when it is not one `toWardenToolPart` produces. */
export function fromWardenToolPart(part: string): string | undefined {
  let body = part;
  if (body.startsWith(PREFIX)) {
    body = body.slice(PREFIX.length);
    if (/^[a-z]/.test(body)) return undefined;
  } else if (!/^[a-z]/.test(body)) {
    return undefined;
  }
  let out = '';
  for (let i = 0; i < body.length; i += 1) {
    const ch = body[i]!;
    if (ch !== '-') {
      if (!/[a-z0-9_]/.test(ch)) return undefined;
      out += ch;
      continue;
    }
    const next = body[i + 1];
    i += 1;
    if (next === '-') out += '-';
    else if (next === '_') out += '.';
    else if (next !== undefined && next >= 'a' && next <= 'z') out += next.toUpperCase();
    else return undefined;
  }
  return isMcpToolName(out) ? out : undefined;
}

/** `<server>.<tool part>`: the name the agent sees and the task grants. */
export function mcpWardenToolName(server: string, mcpName: string): string {
  return `${server}.${toWardenToolPart(mcpName)}`;
}

/** Splits a Warden tool name into its server and MCP tool name, if it has that form. */
export function parseMcpWardenToolName(name: string): { server: string; mcpName: string } | undefined {
  const dot = name.indexOf('.');
  if (dot <= 0) return undefined;
  const mcpName = fromWardenToolPart(name.slice(dot + 1));
  return mcpName === undefined ? undefined : { server: name.slice(0, dot), mcpName };
}
