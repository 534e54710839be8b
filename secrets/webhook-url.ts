/**
 * A webhook URL read from an environment variable (approval notices, monitor alerts). The URL may
 * carry credentials, so errors name the variable and never the value.
 */
import { ConfigError } from '../errors';

/**
 * The http(s) URL in `env[variable]`, or undefined when unset or blank.
 * @throws ConfigError `ERR_CONFIG_INVALID` naming the variable when it is not an http(s) URL (WHATWG URL Standard).
 */
export function webhookUrlFromEnv(env: NodeJS.ProcessEnv, variable: string): URL | undefined {
  const raw = env[variable]?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('ERR_CONFIG_INVALID', `${variable} must be an http(s) URL`, { details: { variable } });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('ERR_CONFIG_INVALID', `${variable} must be an http(s) URL, not ${url.protocol}`, { details: { variable } });
  }
  return url;
}
