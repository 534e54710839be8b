/**
 * Which of Warden's search attributes the client's namespace has. Starting a workflow with an
 * attribute the namespace does not know fails the start, so a task carries only the registered
 * ones (all of them on the embedded server, which registers them; on a cluster, those an operator
 * created, see temporal/README.md). Asked once per client; a namespace the client may not list
 * (no operator permission) counts as having none, and tasks then run without search attributes.
 */
import type { Client } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { WARDEN_SEARCH_ATTRIBUTE_TYPES } from '../workflows/search-attributes';

const known = new WeakMap<Client, Promise<ReadonlySet<string>>>();

/** Names of Warden's search attributes registered in `client`'s namespace with the type Warden gives them. */
export function registeredSearchAttributes(client: Client): Promise<ReadonlySet<string>> {
  let names = known.get(client);
  if (names === undefined) {
    names = client.connection.operatorService
      .listSearchAttributes({ namespace: client.options.namespace })
      .then((listing) => {
        const custom = listing.customAttributes ?? {};
        // Same name, other type (e.g. a Keyword where Warden writes a list): setting it would fail the start.
        return new Set(Object.entries(WARDEN_SEARCH_ATTRIBUTE_TYPES).filter(([name, type]) => custom[name] === encodeSearchAttributeIndexedValueType(type)).map(([name]) => name));
      })
      .catch(() => new Set<string>());
    known.set(client, names);
  }
  return names;
}
