/**
 * Tracing for Warden's own processes (`warden run`, `warden worker`, the test worker): on by
 * default, into the custody ledger of the state folder, plus OTLP when `OTEL_EXPORTER_OTLP_*`
 * is set; `WARDEN_TELEMETRY=0` turns it off.
 */
import { setupTelemetry, type Telemetry } from './setup-telemetry';
import { terminalWriter } from '../terminal-text';
import { switchedOff } from '../env-switch';

export interface ProcessTelemetryOptions {
  stateDir: string;
  serviceName: 'warden-worker' | 'warden-cli' | (string & {});
  env: NodeJS.ProcessEnv;
  /** Where a failed OTLP export is reported, once per process (default: a line on stderr). */
  log?: (line: string) => void;
}

/** Whether `env` turns tracing off (`WARDEN_TELEMETRY=0|false|off`). */
export function telemetryDisabled(env: NodeJS.ProcessEnv): boolean {
  return switchedOff(env.WARDEN_TELEMETRY);
}

/** Sets up this process's tracing, or returns undefined when `WARDEN_TELEMETRY=0`. Shut it down when done. */
export function setupProcessTelemetry(options: ProcessTelemetryOptions): Telemetry | undefined {
  if (telemetryDisabled(options.env)) return undefined;
  const log = options.log ?? ((line: string) => terminalWriter(process.stderr)(`${line}\n`));
  let reported = false;
  return setupTelemetry({
    stateDir: options.stateDir,
    serviceName: options.serviceName,
    env: options.env,
    onOtlpError(error) {
      if (reported) return;
      reported = true;
      log(`warden: OpenTelemetry export failed (${error instanceof Error ? error.message : String(error)}); the custody ledger is unaffected`);
    },
  });
}
