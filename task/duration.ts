/** Durations as files and the CLI write them ("250ms", "30s", "5m", "1h"). Pure: workflows use it. */
export function durationToMs(duration: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(duration);
  if (!match) throw new TypeError(`not a duration: ${duration}`);
  const n = Number(match[1]);
  const unit = match[2];
  return unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
}
