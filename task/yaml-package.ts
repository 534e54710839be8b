/**
 * The yaml package, loaded on first use: a JSON task file with no problems to locate (JSON.parse
 * and the checks) never needs its 72 modules, which were ~12 ms of every `warden run`'s start
 * (issue 17). A YAML file, and any file whose problems are shown at their line, loads it as before.
 */
import type * as Yaml from 'yaml';

let loaded: typeof Yaml | undefined;

/** The `yaml` module (required once, then the same object). */
export function yamlPackage(): typeof Yaml {
  loaded ??= require('yaml') as typeof Yaml;
  return loaded;
}
