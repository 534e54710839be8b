/**
 * Sets up, in a prestarted workflow thread (worker/workflow-thread-prestart.ts), the protobuf code
 * the thread runs on every activation (issue 17: `warden run`'s first task). protobufjs builds a
 * type's `fromObject` (and resolves the whole root's features) lazily, on first use: in a new
 * worker that is the first activation of the first task, ~60 ms on the bench machine before the
 * workflow's code runs at all. Called while the thread waits for its worker, the same functions
 * are built then: what protobufjs builds does not depend on the value converted, so nothing the
 * thread does later changes.
 *
 * Imports nothing: the thread requires this file by its path before it has anything else.
 */

/** The part of protobufjs's reflection this reads: a message type's fields, and their types once resolved. */
interface ReflectedField {
  name: string;
  map: boolean;
  repeated: boolean;
  resolvedType: unknown;
  resolve(): unknown;
}
interface ReflectedType {
  fieldsArray: ReflectedField[];
  fromObject(value: object): unknown;
}

/** How deep the sample value reaches (the activation, its jobs, their payloads and failures). */
const DEPTH = 5;

const isMessageType = (value: unknown): value is ReflectedType => typeof value === 'object' && value !== null && Array.isArray((value as ReflectedType).fieldsArray);

/** A value of `type` with every message field filled (to `DEPTH`, each type once per path), scalars left out. */
function sampleOf(type: ReflectedType, depth: number, onPath: Set<ReflectedType>): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  if (depth >= DEPTH) return value;
  for (const field of type.fieldsArray) {
    field.resolve();
    const nested = field.resolvedType;
    if (!isMessageType(nested) || onPath.has(nested)) continue;
    onPath.add(nested);
    const inner = sampleOf(nested, depth + 1, onPath);
    onPath.delete(nested);
    value[field.name] = field.map ? { key: inner } : field.repeated ? [inner] : inner;
  }
  return value;
}

/**
 * Converts a sample activation with `fromObject` of @temporalio/proto's `WorkflowActivation`, as
 * the SDK's workflow thread does with each activation it gets. Returns whether it ran; never throws.
 */
export function warmActivationDecoding(proto: unknown): boolean {
  try {
    const type = (proto as { coresdk?: { workflow_activation?: { WorkflowActivation?: unknown } } }).coresdk?.workflow_activation?.WorkflowActivation;
    if (!isMessageType(type)) return false;
    type.fromObject(sampleOf(type, 0, new Set([type])));
    return true;
  } catch {
    return false;
  }
}
