/**
 * The origin a `resources.secrets` key binds its headers to. A secret travels only over https
 * unless the task names a plain-http origin explicitly:
 * - `host` or `host:port`: https only (`host` alone: port 443);
 * - `https://host[:port]`: the same, spelled out;
 * - `http://host[:port]`: plain http only (`host` alone: port 80), for services that have no TLS
 *   (a loopback or in-cluster API): the task says so in its own file.
 * `host` is what `resources.hosts` lists (compared in lower case).
 */
export interface SecretOrigin {
  scheme: 'http' | 'https';
  /** The host entry without the scheme (`host` or `host:port`), trimmed and in lower case. */
  host: string;
}

export function secretOriginOf(key: string): SecretOrigin {
  const trimmed = key.trim().toLowerCase();
  const match = /^(https?):\/\/([^/]*)\/?$/.exec(trimmed);
  if (match === null) return { scheme: 'https', host: trimmed };
  return { scheme: match[1] as 'http' | 'https', host: match[2]! };
}
