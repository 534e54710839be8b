/**
 * Registering Warden's search attributes (`workflows/search-attributes.ts`) in a namespace. The
 * embedded dev server gets them at start (`temporal server start-dev --search-attribute`) and, when
 * Warden reuses a server it did not start, through the operator API; a cluster's operator runs
 * {@link searchAttributeCreateCommands} once per namespace.
 */
import type { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { temporal } from '@temporalio/proto';
import { ConfigError } from '../errors';
import { WARDEN_SEARCH_ATTRIBUTE_TYPES } from '../workflows/search-attributes';

/** The Temporal CLI's spelling of each type (`--search-attribute Name=Keyword`, `--type Keyword`). */
const CLI_TYPE_NAMES: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/** `--search-attribute Name=Type` flags for `temporal server start-dev`. */
export function startDevSearchAttributeFlags(): string[] {
  return Object.entries(WARDEN_SEARCH_ATTRIBUTE_TYPES).flatMap(([name, type]) => ['--search-attribute', `${name}=${CLI_TYPE_NAMES[type]}`]);
}

/** The commands that register the attributes on a cluster (`temporal operator search-attribute create`). */
export function searchAttributeCreateCommands(namespace = 'default'): string[] {
  return Object.entries(WARDEN_SEARCH_ATTRIBUTE_TYPES).map(
    ([name, type]) => `temporal operator search-attribute create --namespace ${namespace} --name ${name} --type ${CLI_TYPE_NAMES[type]}`,
  );
}

export interface SearchAttributeRegistration {
  /** Attributes this call created. */
  added: string[];
  /** Attributes that were already there with the right type. */
  present: string[];
}

/**
 * Creates whichever of Warden's search attributes `namespace` lacks (idempotent).
 * @throws ConfigError `ERR_CONFIG_INVALID` when one exists with another type (Temporal cannot
 *   change a type; the operator must choose).
 */
export async function ensureSearchAttributes(connection: Pick<Connection, 'operatorService'>, namespace: string): Promise<SearchAttributeRegistration> {
  const listing = await connection.operatorService.listSearchAttributes({ namespace });
  const existing = listing.customAttributes ?? {};
  const added: string[] = [];
  const present: string[] = [];
  const missing: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const [name, type] of Object.entries(WARDEN_SEARCH_ATTRIBUTE_TYPES)) {
    const wanted = encodeSearchAttributeIndexedValueType(type) as temporal.api.enums.v1.IndexedValueType;
    const has = existing[name];
    if (has === undefined || has === null) {
      missing[name] = wanted;
      added.push(name);
    } else if (has !== wanted) {
      const hasName = temporal.api.enums.v1.IndexedValueType[has] ?? String(has);
      throw new ConfigError('ERR_CONFIG_INVALID', `search attribute ${name} exists in namespace ${namespace} as ${hasName}, but Warden needs ${CLI_TYPE_NAMES[type]}`, {
        details: { name, namespace, existing: hasName, wanted: CLI_TYPE_NAMES[type] },
      });
    } else present.push(name);
  }
  if (added.length > 0) await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  return { added, present };
}
