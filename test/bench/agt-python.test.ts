// The policy section's comparison engine needs python3 with venv; without it the section runs
// with a note that says what is missing (bench/sections/policy.ts, agtPython). Nothing is
// uninstalled: python3 is taken off PATH, or its venv module is hidden behind PYTHONPATH.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agtPython } from '../../bench/sections/policy';

let dir: string;
const saved = { PATH: process.env['PATH'], PYTHONPATH: process.env['PYTHONPATH'] };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-agt-python-'));
});

afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('the comparison engine when python3 cannot make a virtual environment', () => {
  it('python3 not on PATH: the note says so', () => {
    const empty = join(dir, 'bin');
    mkdirSync(empty);
    process.env['PATH'] = empty;
    expect(agtPython({ stateDir: join(dir, 'state'), log: () => undefined })).toEqual({ unavailable: 'python3 is not on PATH' });
  });

  it('python3 without its venv module: the note names the failing step, what python said and the package to install', () => {
    const hidden = join(dir, 'hide-venv');
    mkdirSync(join(hidden, 'venv'), { recursive: true });
    writeFileSync(join(hidden, 'venv', '__init__.py'), 'raise ImportError("No module named venv")\n');
    process.env['PYTHONPATH'] = hidden;
    const result = agtPython({ stateDir: join(dir, 'state'), log: () => undefined });
    expect(result).toEqual({ unavailable: '`python3 -m venv` failed (ImportError: No module named venv); on Debian and Ubuntu: apt-get install python3-venv' });
  });
});
