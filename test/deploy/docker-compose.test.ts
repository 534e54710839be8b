/**
 * Static checks of the production-like stack (docker-compose.yml, deploy/otel-collector.yaml,
 * Dockerfile, .dockerignore). No Docker engine runs where these tests run, so nothing here starts
 * a container: the files are parsed and cross-checked against each other. Every check returns the
 * list of problems it found, and the second half of the file feeds each check a broken copy to
 * prove it does report the mistake it is meant to catch.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = resolve(__dirname, '..', '..');

type Obj = Record<string, unknown>;
type Compose = Obj & { services: Record<string, Obj> };

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function obj(value: unknown): Obj {
  return isObj(value) ? value : {};
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function readYaml(file: string): Obj {
  const parsed: unknown = parse(readFileSync(join(ROOT, file), 'utf8'));
  if (!isObj(parsed)) throw new Error(`${file}: not a YAML mapping`);
  return parsed;
}

function loadCompose(): Compose {
  const compose = readYaml('docker-compose.yml');
  if (!isObj(compose.services)) throw new Error('docker-compose.yml: no services');
  return compose as Compose;
}

// ---------------------------------------------------------------------------------------------
// Reading compose entries in their short and long syntaxes

/** `environment` as a mapping, whether written as a mapping or as a `KEY=value` list. */
function envOf(service: Obj): Record<string, string> {
  const env = service.environment;
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map(String).map((line) => [line.split('=')[0] ?? '', line.slice(line.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(obj(env)).map(([key, value]) => [key, String(value)]));
}

/** `depends_on` as name -> condition; the list form means `service_started`. */
function dependsOnOf(service: Obj): Record<string, string> {
  const deps = service.depends_on;
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [String(name), 'service_started']));
  return Object.fromEntries(Object.entries(obj(deps)).map(([name, spec]) => [name, String(obj(spec).condition ?? 'service_started')]));
}

interface PortMapping {
  hostIp?: string;
  /** Undefined: no published port (or a random one). */
  host?: string;
  container: string;
  protocol: string;
}

function portsOf(service: Obj): PortMapping[] {
  const result: PortMapping[] = [];
  for (const entry of Array.isArray(service.ports) ? service.ports : []) {
    if (isObj(entry)) {
      result.push({
        ...(entry.host_ip !== undefined ? { hostIp: String(entry.host_ip) } : {}),
        ...(entry.published !== undefined ? { host: String(entry.published) } : {}),
        container: String(entry.target),
        protocol: String(entry.protocol ?? 'tcp'),
      });
      continue;
    }
    const [spec = '', protocol = 'tcp'] = String(entry).split('/');
    const parts = spec.split(':');
    const container = parts.pop() ?? '';
    const host = parts.pop();
    const hostIp = parts.length > 0 ? parts.join(':') : undefined;
    result.push({ ...(hostIp !== undefined ? { hostIp } : {}), ...(host !== undefined && host !== '' ? { host } : {}), container, protocol });
  }
  return result;
}

/** Ports other containers can reach: container side of `ports` plus `expose`. */
function containerPortsOf(service: Obj): Set<number> {
  const ports = new Set<number>();
  for (const mapping of portsOf(service)) ports.add(Number(mapping.container));
  for (const port of strings(service.expose)) ports.add(Number(port.split('/')[0]));
  return ports;
}

interface Mount {
  type: 'volume' | 'bind' | 'anonymous';
  source?: string;
  target: string;
}

function mountsOf(service: Obj): Mount[] {
  const result: Mount[] = [];
  for (const entry of Array.isArray(service.volumes) ? service.volumes : []) {
    if (isObj(entry)) {
      const type = entry.type === 'bind' ? 'bind' : entry.source === undefined ? 'anonymous' : 'volume';
      result.push({ type, ...(entry.source !== undefined ? { source: String(entry.source) } : {}), target: String(entry.target) });
      continue;
    }
    const parts = String(entry).split(':');
    if (parts.length === 1) {
      result.push({ type: 'anonymous', target: parts[0] ?? '' });
      continue;
    }
    const [source = '', target = ''] = parts;
    result.push({ type: /^[./~$]/.test(source) ? 'bind' : 'volume', source, target });
  }
  return result;
}

function hasHealthcheck(service: Obj): boolean {
  const healthcheck = service.healthcheck;
  return isObj(healthcheck) && healthcheck.disable !== true && healthcheck.test !== undefined && strings(healthcheck.test)[0] !== 'NONE';
}

/** `host:port` or a URL; undefined when it is neither. */
function hostAndPort(address: string): { host: string; port: number } | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) {
    const url = new URL(address);
    const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    return { host: url.hostname, port };
  }
  const match = /^([A-Za-z0-9_.-]+):(\d+)$/.exec(address);
  return match ? { host: match[1] ?? '', port: Number(match[2]) } : undefined;
}

// ---------------------------------------------------------------------------------------------
// The checks: each returns the problems it found, [] when everything is fine

/** `name:tag` or `name@sha256:...`, with a tag other than `latest` and no unresolved variable. */
function imageProblem(image: string): string | undefined {
  if (image.includes('${')) return `"${image}" depends on a variable`;
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return undefined;
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.indexOf(':');
  if (colon === -1) return `"${image}" has no tag`;
  const tag = lastSegment.slice(colon + 1);
  if (tag === 'latest') return `"${image}" uses the "latest" tag`;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) return `"${image}" has an invalid tag`;
  return undefined;
}

function checkImages(compose: Compose): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.build !== undefined) {
      const build = isObj(service.build) ? service.build : { context: service.build };
      const context = join(ROOT, String(build.context ?? '.'));
      const dockerfile = join(context, String(build.dockerfile ?? 'Dockerfile'));
      if (!existsSync(dockerfile)) problems.push(`${name}: build file ${dockerfile} does not exist`);
      if (service.image !== undefined) {
        const problem = imageProblem(String(service.image));
        if (problem) problems.push(`${name}: ${problem}`);
      }
      continue;
    }
    if (service.image === undefined) {
      problems.push(`${name}: neither image nor build`);
      continue;
    }
    const problem = imageProblem(String(service.image));
    if (problem) problems.push(`${name}: ${problem}`);
  }
  return problems;
}

function checkDependsOn(compose: Compose): string[] {
  const problems: string[] = [];
  const conditions = new Set(['service_started', 'service_healthy', 'service_completed_successfully']);
  for (const [name, service] of Object.entries(compose.services)) {
    for (const [dependency, condition] of Object.entries(dependsOnOf(service))) {
      const target = compose.services[dependency];
      if (target === undefined) {
        problems.push(`${name}: depends_on names "${dependency}", which is not a service`);
        continue;
      }
      if (dependency === name) problems.push(`${name}: depends on itself`);
      if (!conditions.has(condition)) problems.push(`${name}: unknown depends_on condition "${condition}"`);
      if (condition === 'service_healthy' && !hasHealthcheck(target)) {
        problems.push(`${name}: waits for ${dependency} to be healthy, but ${dependency} defines no healthcheck`);
      }
    }
  }
  // A cycle makes `docker compose up` refuse to start anything.
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      problems.push(`depends_on cycle: ${[...path, name].join(' -> ')}`);
      return;
    }
    state.set(name, 'visiting');
    for (const dependency of Object.keys(dependsOnOf(compose.services[name] ?? {}))) {
      if (compose.services[dependency] !== undefined) visit(dependency, [...path, name]);
    }
    state.set(name, 'done');
  };
  for (const name of Object.keys(compose.services)) visit(name, []);
  return problems;
}

function checkVolumes(compose: Compose): string[] {
  const problems: string[] = [];
  const declared = new Set(Object.keys(obj(compose.volumes)));
  const used = new Set<string>();
  for (const [name, service] of Object.entries(compose.services)) {
    for (const mount of mountsOf(service)) {
      if (mount.type === 'volume' && mount.source !== undefined) {
        used.add(mount.source);
        if (!declared.has(mount.source)) problems.push(`${name}: named volume "${mount.source}" is not declared under top-level volumes`);
      }
      if (mount.type === 'bind' && mount.source !== undefined && !mount.source.startsWith('$') && !mount.source.startsWith('~')) {
        if (!existsSync(join(ROOT, mount.source))) problems.push(`${name}: bind-mounted ${mount.source} does not exist`);
      }
    }
  }
  for (const volume of declared) if (!used.has(volume)) problems.push(`volume "${volume}" is declared but no service mounts it`);
  return problems;
}

function checkHostPorts(compose: Compose): string[] {
  const problems: string[] = [];
  const owners = new Map<string, string>();
  for (const [name, service] of Object.entries(compose.services)) {
    const replicas = Number(obj(service.deploy).replicas ?? 1);
    for (const mapping of portsOf(service)) {
      if (mapping.host === undefined) continue;
      if (replicas > 1) problems.push(`${name}: ${replicas} replicas cannot all publish host port ${mapping.host}`);
      // Different host IPs could share a port, but 0.0.0.0 overlaps every address: keep it simple.
      const key = `${mapping.host}/${mapping.protocol}`;
      const owner = owners.get(key);
      if (owner !== undefined) problems.push(`host port ${key} is published by both ${owner} and ${name}`);
      else owners.set(key, name);
    }
  }
  return problems;
}

/** `address` (host:port or URL) must name a service of this file and a port that service listens on. */
function addressProblem(compose: Compose, who: string, address: string | undefined, expectedService: string): string | undefined {
  if (address === undefined) return `${who} is not set`;
  const target = hostAndPort(address);
  if (target === undefined) return `${who}="${address}" is not host:port`;
  if (target.host !== expectedService) return `${who}="${address}" does not point at the ${expectedService} service`;
  const service = compose.services[target.host];
  if (service === undefined) return `${who}="${address}": no service named ${target.host}`;
  if (!containerPortsOf(service).has(target.port)) return `${who}="${address}": ${target.host} does not listen on ${target.port}`;
  return undefined;
}

function checkTemporalWiring(compose: Compose): string[] {
  const problems: string[] = [];
  const worker = compose.services.worker ?? {};
  const env = envOf(worker);
  for (const [who, address] of [
    ['worker TEMPORAL_ADDRESS', env.TEMPORAL_ADDRESS],
    ['temporal-ui TEMPORAL_ADDRESS', envOf(compose.services['temporal-ui'] ?? {}).TEMPORAL_ADDRESS],
  ] as const) {
    const problem = addressProblem(compose, who, address, 'temporal');
    if (problem) problems.push(problem);
  }
  if (hostAndPort(env.TEMPORAL_ADDRESS ?? '')?.port !== 7233) problems.push('worker TEMPORAL_ADDRESS does not use the Temporal frontend port 7233');
  if (env.TEMPORAL_NAMESPACE !== 'default') problems.push(`worker TEMPORAL_NAMESPACE is ${env.TEMPORAL_NAMESPACE}, not default`);

  const temporal = envOf(compose.services.temporal ?? {});
  const postgres = envOf(compose.services.postgres ?? {});
  if (temporal.DB !== 'postgres12') problems.push(`temporal DB is ${temporal.DB}, not postgres12`);
  if (compose.services[temporal.POSTGRES_SEEDS ?? ''] === undefined) problems.push(`temporal POSTGRES_SEEDS="${temporal.POSTGRES_SEEDS}" is not a service`);
  if (temporal.POSTGRES_USER !== postgres.POSTGRES_USER) problems.push('temporal POSTGRES_USER differs from the postgres service POSTGRES_USER');
  if (temporal.POSTGRES_PWD !== postgres.POSTGRES_PASSWORD) problems.push('temporal POSTGRES_PWD differs from the postgres service POSTGRES_PASSWORD');
  return problems;
}

/** Ports the collector's OTLP receiver listens on, by protocol. */
function collectorOtlpPorts(config: Obj): { grpc?: number; http?: number } {
  const protocols = obj(obj(obj(config.receivers).otlp).protocols);
  const portOf = (protocol: string, fallback: number): number | undefined => {
    if (!(protocol in protocols)) return undefined;
    const endpoint = obj(protocols[protocol]).endpoint;
    return endpoint === undefined ? fallback : Number(String(endpoint).split(':').pop());
  };
  const grpc = portOf('grpc', 4317);
  const http = portOf('http', 4318);
  return { ...(grpc !== undefined ? { grpc } : {}), ...(http !== undefined ? { http } : {}) };
}

function checkCollectorConfig(config: Obj): string[] {
  const problems: string[] = [];
  const service = obj(config.service);
  for (const extension of strings(service.extensions)) {
    if (!(extension in obj(config.extensions))) problems.push(`service.extensions names undefined extension "${extension}"`);
  }
  const pipelines = obj(service.pipelines);
  if (Object.keys(pipelines).length === 0) problems.push('no pipelines');
  const usedExporters = new Set<string>();
  for (const [pipelineName, pipeline] of Object.entries(pipelines)) {
    if (!/^(traces|metrics|logs)(\/.+)?$/.test(pipelineName)) problems.push(`pipeline "${pipelineName}" is not traces, metrics or logs`);
    for (const kind of ['receivers', 'processors', 'exporters'] as const) {
      const names = strings(obj(pipeline)[kind]);
      if (kind !== 'processors' && names.length === 0) problems.push(`pipeline ${pipelineName} has no ${kind}`);
      for (const name of names) {
        if (!(name in obj(config[kind]))) problems.push(`pipeline ${pipelineName} names undefined ${kind.slice(0, -1)} "${name}"`);
        if (kind === 'exporters') usedExporters.add(name);
      }
    }
  }
  for (const exporter of Object.keys(obj(config.exporters))) {
    if (!usedExporters.has(exporter)) problems.push(`exporter "${exporter}" is defined but in no pipeline`);
  }
  const traces = obj(pipelines.traces);
  if (!strings(traces.processors).includes('batch')) problems.push('traces pipeline has no batch processor');
  if (!strings(traces.exporters).includes('debug')) problems.push('traces pipeline does not export to debug');
  const ports = collectorOtlpPorts(config);
  if (ports.grpc !== 4317) problems.push(`OTLP gRPC receiver listens on ${ports.grpc}, not 4317`);
  if (ports.http !== 4318) problems.push(`OTLP HTTP receiver listens on ${ports.http}, not 4318`);
  return problems;
}

/** The collector's OTLP exporter to Jaeger must reach a port Jaeger really exposes for OTLP. */
function checkJaegerWiring(compose: Compose, config: Obj): string[] {
  const problems: string[] = [];
  const exporters = obj(config.exporters);
  const toJaeger = Object.entries(exporters).filter(([, spec]) => hostAndPort(String(obj(spec).endpoint ?? ''))?.host === 'jaeger');
  if (toJaeger.length === 0) return ['no collector exporter has an endpoint on the jaeger service'];
  for (const [name, spec] of toJaeger) {
    const endpoint = String(obj(spec).endpoint);
    const otlpPort = name === 'otlp' || name.startsWith('otlp/') ? 4317 : name === 'otlphttp' || name.startsWith('otlphttp/') ? 4318 : undefined;
    if (otlpPort === undefined) {
      problems.push(`exporter ${name} to Jaeger is not an OTLP exporter`);
      continue;
    }
    const problem = addressProblem(compose, `exporter ${name} endpoint`, endpoint, 'jaeger');
    if (problem) problems.push(problem);
    if (hostAndPort(endpoint)?.port !== otlpPort) problems.push(`exporter ${name} sends to ${endpoint}; Jaeger's OTLP ${otlpPort === 4317 ? 'gRPC' : 'HTTP'} port is ${otlpPort}`);
    if (!strings(obj(obj(obj(config.service).pipelines).traces).exporters).includes(name)) problems.push(`traces pipeline does not use exporter ${name}`);
  }
  const jaegerEnv = envOf(compose.services.jaeger ?? {});
  if (jaegerEnv.COLLECTOR_OTLP_ENABLED !== 'true') problems.push('jaeger: COLLECTOR_OTLP_ENABLED is not true');
  return problems;
}

/** The worker's OTLP endpoint must reach the collector's OTLP/HTTP receiver; the config file must be the one mounted. */
function checkCollectorWiring(compose: Compose, config: Obj): string[] {
  const problems: string[] = [];
  const endpoint = envOf(compose.services.worker ?? {}).OTEL_EXPORTER_OTLP_ENDPOINT;
  const problem = addressProblem(compose, 'worker OTEL_EXPORTER_OTLP_ENDPOINT', endpoint, 'otel-collector');
  if (problem) problems.push(problem);
  if (endpoint !== undefined && !endpoint.startsWith('http://')) problems.push(`worker OTEL_EXPORTER_OTLP_ENDPOINT="${endpoint}" is not an http:// URL`);
  const httpPort = collectorOtlpPorts(config).http;
  if (hostAndPort(endpoint ?? '')?.port !== httpPort) problems.push(`worker OTEL_EXPORTER_OTLP_ENDPOINT="${endpoint}" is not the collector's OTLP/HTTP port ${httpPort}`);

  const collector = compose.services['otel-collector'] ?? {};
  const mount = mountsOf(collector).find((m) => m.type === 'bind' && m.source?.replace(/^\.\//, '') === 'deploy/otel-collector.yaml');
  if (mount === undefined) {
    problems.push('otel-collector does not mount deploy/otel-collector.yaml');
  } else {
    const configFlag = strings(collector.command).find((arg) => arg.startsWith('--config='));
    // Without --config the contrib image reads /etc/otelcol-contrib/config.yaml.
    const configPath = configFlag?.slice('--config='.length) ?? '/etc/otelcol-contrib/config.yaml';
    if (configPath !== mount.target) problems.push(`collector reads ${configPath} but deploy/otel-collector.yaml is mounted at ${mount.target}`);
  }
  return problems;
}

interface DockerInstruction {
  keyword: string;
  args: string;
}

/** Instructions of a Dockerfile, comments dropped and `\` continuations joined. */
function dockerInstructions(text: string): DockerInstruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  if (current !== '') logical.push(current);
  return logical.map((line) => {
    const [keyword = '', ...rest] = line.split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
  });
}

function execForm(args: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) ? parsed.map(String) : undefined;
  } catch {
    return undefined;
  }
}

function checkDockerfile(text: string): string[] {
  const problems: string[] = [];
  const instructions = dockerInstructions(text);
  const froms = instructions.filter((i) => i.keyword === 'FROM');
  if (froms.length === 0) return ['no FROM'];
  const stageNames = new Set(froms.map((i) => /\sAS\s+(\S+)/i.exec(i.args)?.[1]?.toLowerCase()).filter((n) => n !== undefined));
  for (const from of froms) {
    const image = from.args.split(/\s+/).find((word) => !word.startsWith('--')) ?? '';
    if (stageNames.has(image.toLowerCase())) continue;
    const problem = imageProblem(image);
    if (problem) problems.push(`FROM ${problem}`);
  }
  // Only the last stage is the image that runs.
  const lastFrom = instructions.lastIndexOf(froms[froms.length - 1] as DockerInstruction);
  const final = instructions.slice(lastFrom + 1);
  const user = final.filter((i) => i.keyword === 'USER').pop();
  if (user === undefined) problems.push('the final stage sets no USER: the worker would run as root');
  else if (/^(root|0)(:.*)?$/.test(user.args.trim())) problems.push(`the final stage runs as ${user.args}`);

  const entrypoint = final.filter((i) => i.keyword === 'ENTRYPOINT').pop();
  const cmd = final.filter((i) => i.keyword === 'CMD').pop();
  if (cmd === undefined && entrypoint === undefined) return [...problems, 'no CMD or ENTRYPOINT in the final stage'];
  const parts = [entrypoint, cmd].filter((i) => i !== undefined).map((i) => ({ i, argv: execForm(i.args) }));
  const shellForm = parts.find((p) => p.argv === undefined);
  if (shellForm) return [...problems, `${shellForm.i.keyword} is in shell form: signals would not reach node`];
  const argv = parts.flatMap((p) => p.argv ?? []);
  const script = argv.indexOf('bin/warden.js');
  if (argv[0] !== 'node') problems.push(`the command runs ${argv[0]}, not node`);
  if (script === -1) problems.push('the command does not run bin/warden.js');
  else {
    if (argv[script + 1] !== 'worker') problems.push(`the command runs bin/warden.js ${argv[script + 1]}, not "worker"`);
    const flag = argv.indexOf('--no-node-snapshot');
    if (flag === -1 || flag > script) problems.push('node is not started with --no-node-snapshot (isolated-vm needs it)');
  }
  return problems;
}

function checkWorkerHardening(compose: Compose, dockerfile: string): string[] {
  const problems: string[] = [];
  const worker = compose.services.worker;
  if (worker === undefined) return ['no worker service'];
  if (Number(obj(worker.deploy).replicas) !== 2) problems.push(`worker deploy.replicas is ${obj(worker.deploy).replicas}, not 2`);
  if (worker.command !== undefined || worker.entrypoint !== undefined) problems.push('worker overrides the Dockerfile command');
  if (worker.user !== undefined && /^(root|0)(:.*)?$/.test(String(worker.user))) problems.push(`worker runs as ${worker.user}`);
  if (worker.user === undefined && checkDockerfile(dockerfile).some((p) => p.includes('USER'))) problems.push('worker has no non-root user');
  if (worker.read_only !== true) problems.push('worker root filesystem is not read_only');
  const tmpfs = Array.isArray(worker.tmpfs) ? strings(worker.tmpfs) : worker.tmpfs === undefined ? [] : [String(worker.tmpfs)];
  if (!tmpfs.some((entry) => entry.split(':')[0] === '/tmp')) problems.push('worker has no tmpfs on /tmp (SQLite and Node write temporary files there)');
  const stateDir = envOf(worker).WARDEN_STATE_DIR;
  if (stateDir === undefined) problems.push('worker WARDEN_STATE_DIR is not set');
  else if (!mountsOf(worker).some((m) => m.type === 'anonymous' && m.target === stateDir)) {
    problems.push(`worker WARDEN_STATE_DIR=${stateDir} is not a per-replica (anonymous) volume (the filesystem is read-only, and replicas must not share it)`);
  }
  const dependsOn = dependsOnOf(worker);
  if (dependsOn.temporal !== 'service_healthy') problems.push('worker does not wait for temporal to be healthy');
  return problems;
}

/** The parts of a postgres:// URL, or undefined. */
function databaseUrlParts(url: string | undefined): { user: string; password: string; host: string; port: number; database: string } | undefined {
  if (url === undefined) return undefined;
  try {
    // Compose interpolation (${VAR:-default}) stands in for the password: resolve to the default.
    const parsed = new URL(url.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1'));
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') return undefined;
    return { user: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password), host: parsed.hostname, port: Number(parsed.port || 5432), database: parsed.pathname.slice(1) };
  } catch {
    return undefined;
  }
}

/** With `${VAR:-default}` resolved to its default. */
function resolved(value: string | undefined): string | undefined {
  return value?.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
}

/**
 * Workers share state through the stack's PostgreSQL in a database and under a user of their own
 * (never Temporal's), created by the mounted init script, migrated by a one-shot service they wait
 * for; and they share no volume.
 */
function checkSharedState(compose: Compose, initScript: string): string[] {
  const problems: string[] = [];
  const worker = compose.services.worker ?? {};
  const migrate = compose.services['warden-migrate'];
  const postgres = compose.services.postgres ?? {};
  const pgEnv = envOf(postgres);
  const temporal = envOf(compose.services.temporal ?? {});
  const url = envOf(worker).WARDEN_DATABASE_URL;
  const parts = databaseUrlParts(url);
  if (parts === undefined) return [`worker WARDEN_DATABASE_URL=${JSON.stringify(url)} is not a postgres:// URL`];
  const address = addressProblem(compose, 'worker WARDEN_DATABASE_URL', `${parts.host}:${parts.port}`, 'postgres');
  if (address) problems.push(address);
  const temporalDatabases = new Set([temporal.DBNAME ?? 'temporal', temporal.VISIBILITY_DBNAME ?? 'temporal_visibility', 'postgres']);
  if (parts.user === (temporal.POSTGRES_USER ?? pgEnv.POSTGRES_USER)) problems.push(`workers connect as Temporal's database user "${parts.user}"`);
  if (temporalDatabases.has(parts.database)) problems.push(`workers use the database "${parts.database}", which is Temporal's`);
  if (parts.password !== '' && parts.password === resolved(pgEnv.POSTGRES_PASSWORD)) problems.push("workers use Temporal's database password");
  if (resolved(pgEnv.WARDEN_DB_USER) !== parts.user || resolved(pgEnv.WARDEN_DB_NAME) !== parts.database || resolved(pgEnv.WARDEN_DB_PASSWORD) !== parts.password) {
    problems.push('the postgres service WARDEN_DB_USER / WARDEN_DB_NAME / WARDEN_DB_PASSWORD do not match the workers\' WARDEN_DATABASE_URL');
  }
  if (!mountsOf(postgres).some((m) => m.type === 'bind' && m.source === './deploy/postgres-init' && m.target === '/docker-entrypoint-initdb.d')) {
    problems.push('deploy/postgres-init is not mounted at /docker-entrypoint-initdb.d of the postgres service');
  }
  if (!/CREATE ROLE :"warden_user" LOGIN/.test(initScript) || !/CREATE DATABASE :"warden_db" OWNER :"warden_user"/.test(initScript)) {
    problems.push('the init script does not create the Warden user and a database it owns');
  }
  if (migrate === undefined) problems.push('no warden-migrate service runs `warden db migrate`');
  else {
    const command = strings(migrate.command);
    if (command.slice(-3).join(' ') !== 'bin/warden.js db migrate') problems.push(`warden-migrate runs ${command.join(' ')}, not bin/warden.js db migrate`);
    if (envOf(migrate).WARDEN_DATABASE_URL !== url) problems.push('warden-migrate migrates another database than the workers use');
    if (dependsOnOf(migrate).postgres !== 'service_healthy') problems.push('warden-migrate does not wait for postgres to be healthy');
    if (JSON.stringify(migrate.build) !== JSON.stringify(worker.build)) problems.push('warden-migrate is not built like the workers (its schema version would differ)');
    if (migrate.restart !== 'no') problems.push('warden-migrate is restarted: it is a one-shot');
  }
  if (dependsOnOf(worker)['warden-migrate'] !== 'service_completed_successfully') problems.push('worker does not wait for warden-migrate to complete');
  for (const mount of mountsOf(worker)) {
    if (mount.type !== 'anonymous') problems.push(`worker mounts ${mount.source ?? '?'} at ${mount.target}: replicas would share it`);
  }
  return problems;
}

function checkDockerignore(text: string): string[] {
  const patterns = new Set(text.split(/\r?\n/).map((l) => l.trim().replace(/^\//, '').replace(/\/$/, '')).filter((l) => l !== '' && !l.startsWith('#')));
  return ['node_modules', '.git', '.warden*'].filter((p) => !patterns.has(p)).map((p) => `.dockerignore does not exclude ${p}`);
}

// ---------------------------------------------------------------------------------------------
// The real files

describe('docker-compose.yml and friends, checked without a Docker engine', () => {
  const compose = loadCompose();
  const collector = readYaml('deploy/otel-collector.yaml');
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  it('has the expected services', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['jaeger', 'otel-collector', 'postgres', 'temporal', 'temporal-ui', 'warden-migrate', 'worker']);
    expect(String(compose.services.postgres?.image)).toMatch(/^postgres:16(\b|$)/);
    expect(String(compose.services.temporal?.image)).toMatch(/^temporalio\/auto-setup:1\.2\d\./);
    expect(strings(obj(compose.services.postgres?.healthcheck).test).join(' ')).toContain('pg_isready');
    expect(strings(obj(compose.services.temporal?.healthcheck).test).join(' ')).toMatch(/temporal operator cluster health|tctl .*cluster health/);
  });

  it('pins every image to a tag (no latest, no untagged) or builds it', () => {
    expect(checkImages(compose)).toEqual([]);
  });

  it('depends_on names existing services, waits for health only where a healthcheck exists, has no cycle', () => {
    expect(checkDependsOn(compose)).toEqual([]);
  });

  it('declares every named volume it mounts (and mounts every one it declares)', () => {
    expect(checkVolumes(compose)).toEqual([]);
  });

  it('publishes each host port once, and never from a replicated service', () => {
    expect(checkHostPorts(compose)).toEqual([]);
  });

  it('points the worker and the UI at the Temporal frontend, and Temporal at PostgreSQL', () => {
    expect(checkTemporalWiring(compose)).toEqual([]);
  });

  it('collector pipelines only use receivers, processors and exporters that are defined', () => {
    expect(checkCollectorConfig(collector)).toEqual([]);
  });

  it('collector exports traces to a port Jaeger exposes for OTLP (4317 inside the network)', () => {
    expect(checkJaegerWiring(compose, collector)).toEqual([]);
  });

  it('worker telemetry reaches the collector, which reads the mounted config', () => {
    expect(checkCollectorWiring(compose, collector)).toEqual([]);
  });

  it('Dockerfile runs `node --no-node-snapshot bin/warden.js worker` as a non-root user', () => {
    expect(checkDockerfile(dockerfile)).toEqual([]);
  });

  it('worker: 2 replicas, non-root, read-only root filesystem, tmpfs /tmp, state on a per-replica volume', () => {
    expect(checkWorkerHardening(compose, dockerfile)).toEqual([]);
  });

  it('workers share state through their own PostgreSQL database and user, migrated before they start, and share no volume', () => {
    expect(checkSharedState(compose, readFileSync(join(ROOT, 'deploy', 'postgres-init', '10-warden-database.sh'), 'utf8'))).toEqual([]);
  });

  it('.dockerignore keeps node_modules, .git and Warden state out of the build context', () => {
    expect(checkDockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The checks fail on broken copies

describe('the checks catch mistakes', () => {
  const original = loadCompose();
  const collector = readYaml('deploy/otel-collector.yaml');
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  function mutated(change: (compose: Compose) => void): Compose {
    const copy = structuredClone(original);
    change(copy);
    return copy;
  }
  const service = (compose: Compose, name: string): Obj => {
    const found = compose.services[name];
    if (found === undefined) throw new Error(`no service ${name}`);
    return found;
  };

  it('a depends_on typo', () => {
    const broken = mutated((c) => {
      service(c, 'worker').depends_on = { temporl: { condition: 'service_healthy' } };
    });
    expect(checkDependsOn(broken)).toEqual(['worker: depends_on names "temporl", which is not a service']);
  });

  it('service_healthy on a service without a healthcheck, and a cycle', () => {
    const broken = mutated((c) => {
      service(c, 'otel-collector').depends_on = { jaeger: { condition: 'service_healthy' } };
      service(c, 'postgres').depends_on = ['worker'];
    });
    const problems = checkDependsOn(broken);
    expect(problems).toContain('otel-collector: waits for jaeger to be healthy, but jaeger defines no healthcheck');
    expect(problems.some((p) => p.startsWith('depends_on cycle:'))).toBe(true);
  });

  it('latest, untagged and variable image tags', () => {
    expect(imageProblem('jaegertracing/all-in-one:latest')).toMatch(/latest/);
    expect(imageProblem('postgres')).toMatch(/no tag/);
    expect(imageProblem('localhost:5000/warden')).toMatch(/no tag/);
    expect(imageProblem('temporalio/ui:${UI_VERSION}')).toMatch(/variable/);
    expect(imageProblem('localhost:5000/warden:1.0')).toBeUndefined();
    const broken = mutated((c) => {
      service(c, 'jaeger').image = 'jaegertracing/all-in-one';
      delete service(c, 'worker').build;
    });
    expect(checkImages(broken)).toEqual(['jaeger: "jaegertracing/all-in-one" has no tag', 'worker: neither image nor build']);
  });

  it('an undeclared named volume', () => {
    const broken = mutated((c) => {
      c.volumes = { ...obj(c.volumes), 'warden-state': null };
      service(c, 'worker').volumes = ['warden-stat:/var/lib/warden'];
    });
    expect(checkVolumes(broken)).toEqual([
      'worker: named volume "warden-stat" is not declared under top-level volumes',
      'volume "warden-state" is declared but no service mounts it',
    ]);
    expect(checkWorkerHardening(broken, dockerfile)).toEqual([
      'worker WARDEN_STATE_DIR=/var/lib/warden is not a per-replica (anonymous) volume (the filesystem is read-only, and replicas must not share it)',
    ]);
  });

  it('a duplicated host port and a published port on a replicated service', () => {
    const broken = mutated((c) => {
      service(c, 'temporal-ui').ports = ['127.0.0.1:16686:8080'];
      service(c, 'worker').ports = ['9000:9000'];
    });
    expect(checkHostPorts(broken)).toEqual([
      'host port 16686/tcp is published by both temporal-ui and jaeger',
      'worker: 2 replicas cannot all publish host port 9000',
    ]);
  });

  it('a worker TEMPORAL_ADDRESS on the wrong port or host, and mismatched database credentials', () => {
    const wrongPort = mutated((c) => {
      service(c, 'worker').environment = { ...envOf(service(c, 'worker')), TEMPORAL_ADDRESS: 'temporal:7234' };
      service(c, 'temporal').environment = { ...envOf(service(c, 'temporal')), POSTGRES_PWD: 'other' };
    });
    expect(checkTemporalWiring(wrongPort)).toEqual([
      'worker TEMPORAL_ADDRESS="temporal:7234": temporal does not listen on 7234',
      'worker TEMPORAL_ADDRESS does not use the Temporal frontend port 7233',
      'temporal POSTGRES_PWD differs from the postgres service POSTGRES_PASSWORD',
    ]);
    const wrongHost = mutated((c) => {
      service(c, 'worker').environment = { ...envOf(service(c, 'worker')), TEMPORAL_ADDRESS: 'localhost:7233' };
    });
    expect(checkTemporalWiring(wrongHost)).toEqual(['worker TEMPORAL_ADDRESS="localhost:7233" does not point at the temporal service']);
  });

  it('an undefined exporter in a pipeline and an unused one', () => {
    const broken = structuredClone(collector);
    obj(obj(obj(broken.service).pipelines).traces).exporters = ['otlp/jaegr', 'debug'];
    expect(checkCollectorConfig(broken)).toEqual([
      'pipeline traces names undefined exporter "otlp/jaegr"',
      'exporter "otlp/jaeger" is defined but in no pipeline',
    ]);
  });

  it('a collector endpoint on a port Jaeger does not expose for OTLP', () => {
    const broken = structuredClone(collector);
    obj(obj(broken.exporters)['otlp/jaeger']).endpoint = 'jaeger:14250';
    expect(checkJaegerWiring(original, broken)).toEqual([
      'exporter otlp/jaeger endpoint="jaeger:14250": jaeger does not listen on 14250',
      "exporter otlp/jaeger sends to jaeger:14250; Jaeger's OTLP gRPC port is 4317",
    ]);
  });

  it('a worker OTLP endpoint on the gRPC port, and a collector reading an unmounted config path', () => {
    const broken = mutated((c) => {
      service(c, 'worker').environment = { ...envOf(service(c, 'worker')), OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4317' };
      service(c, 'otel-collector').command = ['--config=/etc/otelcol/config.yaml'];
    });
    expect(checkCollectorWiring(broken, collector)).toEqual([
      `worker OTEL_EXPORTER_OTLP_ENDPOINT="http://otel-collector:4317" is not the collector's OTLP/HTTP port 4318`,
      'collector reads /etc/otelcol/config.yaml but deploy/otel-collector.yaml is mounted at /etc/otelcol-contrib/config.yaml',
    ]);
  });

  it('a Dockerfile without --no-node-snapshot, running as root, or with USER only in the build stage', () => {
    expect(checkDockerfile(dockerfile.replace('"--no-node-snapshot", ', ''))).toEqual(['node is not started with --no-node-snapshot (isolated-vm needs it)']);
    expect(checkDockerfile(dockerfile.replace(/^USER .*$/m, 'USER root'))).toEqual(['the final stage runs as root']);
    expect(checkDockerfile(dockerfile.replace(/^CMD .*$/m, 'CMD node --no-node-snapshot bin/warden.js worker'))).toEqual([
      'CMD is in shell form: signals would not reach node',
    ]);
    const userInBuilderOnly = 'FROM node:20-bookworm-slim AS deps\nUSER node\nFROM node:20-bookworm-slim\nCMD ["node", "--no-node-snapshot", "bin/warden.js", "worker"]\n';
    expect(checkDockerfile(userInBuilderOnly)).toEqual(['the final stage sets no USER: the worker would run as root']);
    expect(checkDockerfile('FROM node\nUSER node\nCMD ["node", "--no-node-snapshot", "bin/warden.js", "run"]\n')).toEqual([
      'FROM "node" has no tag',
      'the command runs bin/warden.js run, not "worker"',
    ]);
  });

  it('a writable or unhardened worker', () => {
    const broken = mutated((c) => {
      const worker = service(c, 'worker');
      delete worker.read_only;
      delete worker.tmpfs;
      worker.user = 'root';
      worker.deploy = { replicas: 1 };
    });
    expect(checkWorkerHardening(broken, dockerfile)).toEqual([
      'worker deploy.replicas is 1, not 2',
      'worker runs as root',
      'worker root filesystem is not read_only',
      'worker has no tmpfs on /tmp (SQLite and Node write temporary files there)',
    ]);
  });

  it('workers on Temporal\'s database or user, a shared volume, no migration step', () => {
    const script = readFileSync(join(ROOT, 'deploy', 'postgres-init', '10-warden-database.sh'), 'utf8');
    const onTemporals = mutated((c) => {
      service(c, 'worker').environment = { ...envOf(service(c, 'worker')), WARDEN_DATABASE_URL: 'postgres://temporal:temporal@postgres:5432/temporal' };
    });
    expect(checkSharedState(onTemporals, script)).toEqual([
      'workers connect as Temporal\'s database user "temporal"',
      'workers use the database "temporal", which is Temporal\'s',
      "workers use Temporal's database password",
      "the postgres service WARDEN_DB_USER / WARDEN_DB_NAME / WARDEN_DB_PASSWORD do not match the workers' WARDEN_DATABASE_URL",
      'warden-migrate migrates another database than the workers use',
    ]);
    const sharedVolume = mutated((c) => {
      service(c, 'worker').volumes = ['warden-state:/var/lib/warden'];
      delete obj(service(c, 'worker').depends_on)['warden-migrate'];
      delete c.services['warden-migrate'];
    });
    expect(checkSharedState(sharedVolume, script)).toEqual([
      'no warden-migrate service runs `warden db migrate`',
      'worker does not wait for warden-migrate to complete',
      'worker mounts warden-state at /var/lib/warden: replicas would share it',
    ]);
    expect(checkWorkerHardening(sharedVolume, dockerfile)).toEqual([
      'worker WARDEN_STATE_DIR=/var/lib/warden is not a per-replica (anonymous) volume (the filesystem is read-only, and replicas must not share it)',
    ]);
    expect(checkSharedState(original, script.replace('OWNER :"warden_user"', ''))).toEqual(['the init script does not create the Warden user and a database it owns']);
  });

  it('a .dockerignore that ships node_modules', () => {
    expect(checkDockerignore('.git\n.warden*\n')).toEqual(['.dockerignore does not exclude node_modules']);
  });
});
