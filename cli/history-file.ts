/**
 * Workflow histories from files, in the two forms people have: Warden's export
 * (`warden replay --export`: `{ workflowId, history }` in protobuf's object form) and Temporal's
 * own JSON (`temporal workflow show --output json`, the Web UI's download: `{ events: [...] }` in
 * proto3 JSON, where timestamps and durations are strings and the workflow id sits in the first
 * event). Anything else is refused naming the file and what was expected.
 */
import { temporal } from '@temporalio/proto';
import { ConfigError } from '../errors';
import { readUserFile, UserFileError } from '../regular-file';
import { jsonProblemText } from '../json-syntax';

const { History } = temporal.api.history.v1;
type IHistory = temporal.api.history.v1.IHistory;

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const DURATION = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/;

/** Proto3 JSON's `google.protobuf.Timestamp` / `Duration` strings as protobuf objects. */
function protoTimeValue(value: string): { seconds: string; nanos: number } | undefined {
  const stamp = RFC3339.exec(value);
  if (stamp !== null) {
    const seconds = Math.floor(Date.parse(`${stamp[1]}${stamp[3]}`) / 1000);
    if (!Number.isFinite(seconds)) return undefined;
    return { seconds: String(seconds), nanos: Number((stamp[2] ?? '.0').slice(1).padEnd(9, '0')) };
  }
  const duration = DURATION.exec(value);
  if (duration !== null) {
    const sign = duration[1] === '-' ? -1 : 1;
    return { seconds: String(sign * Number(duration[2])), nanos: sign * Number((duration[3] ?? '0').padEnd(9, '0')) };
  }
  return undefined;
}

/** Temporal's proto3 JSON in the object form `History.fromObject` reads. */
function fromProto3Json(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => fromProto3Json(v, key));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromProto3Json(v, k);
    return out;
  }
  if (typeof value === 'string' && /(Time|Timeout|Interval|Backoff|Delay|Duration)$/i.test(key)) return protoTimeValue(value) ?? value;
  // Older tools wrote event types without their prefix ("WorkflowExecutionStarted").
  if (typeof value === 'string' && key === 'eventType' && !value.startsWith('EVENT_TYPE_')) {
    return `EVENT_TYPE_${value.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
  }
  return value;
}

/**
 * The history in `file` and the workflow id it belongs to.
 * @throws ConfigError `ERR_CONFIG_INVALID` naming the file when it is neither form.
 */
export async function readHistoryFile(file: string): Promise<{ workflowId: string; history: IHistory }> {
  let text: string;
  try {
    text = await readUserFile(file, { what: 'history file' });
  } catch (error) {
    if (!(error instanceof UserFileError)) throw error;
    throw new ConfigError('ERR_CONFIG_INVALID', error.message, { details: { file }, cause: error });
  }
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch {
    throw new ConfigError('ERR_CONFIG_INVALID', `${file} cannot be read as JSON (${jsonProblemText(text)})`, { details: { file } });
  }
  const fail = (what: string) =>
    new ConfigError('ERR_CONFIG_INVALID', `${file} is not a workflow history: ${what} (expected Warden's export { workflowId, history } or Temporal's JSON { events: [...] })`, { details: { file } });
  if (stored === null || typeof stored !== 'object') throw fail('not a JSON object');
  const record = stored as { workflowId?: unknown; history?: unknown; events?: unknown };
  try {
    if (typeof record.workflowId === 'string' && typeof record.history === 'object' && record.history !== null) {
      return { workflowId: record.workflowId, history: History.fromObject(record.history as Record<string, unknown>) };
    }
    if (Array.isArray(record.events)) {
      const history = History.fromObject(fromProto3Json(stored) as Record<string, unknown>);
      const first = history.events?.[0];
      const workflowId = first?.workflowExecutionStartedEventAttributes?.workflowId;
      if (first?.eventType !== temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) throw fail('its first event is not WorkflowExecutionStarted');
      if (!workflowId) throw fail('its first event names no workflow id');
      return { workflowId, history };
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw fail((error as Error).message);
  }
  throw fail('neither { workflowId, history } nor { events }');
}
