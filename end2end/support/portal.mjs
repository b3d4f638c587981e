// Starts the real server binary for a test file, on a free port, against a
// fresh database on the PostgreSQL that scripts/test started.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run the browser tests through scripts/test`);
  return value;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function createDatabase() {
  const socketDir = required('TEST_PG_SOCKET_DIR');
  const beside = process.env.PG_BIN && join(process.env.PG_BIN, 'psql');
  const psql = beside && existsSync(beside) ? beside : 'psql';
  const name = `lb_e2e_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  execFileSync(psql, ['-h', socketDir, '-U', 'loopback', '-d', 'postgres', '-qc', `CREATE DATABASE ${name}`]);
  return `postgres://loopback@localhost/${name}?host=${socketDir}`;
}

// `args`: extra server flags.
export async function startPortal({ args = [] } = {}) {
  const bin = required('LOOPBACK_BIN');
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'loopback-e2e-'));
  const stdoutPath = join(dataDir, 'stdout.log');
  const stderrPath = join(dataDir, 'stderr.log');
  const child = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--site-root', required('LEPTOS_SITE_ROOT'), ...args], {
    env: { ...process.env, DATABASE_URL: createDatabase(), LOOPBACK_LOG: process.env.E2E_LOOPBACK_LOG || 'info' },
    stdio: ['ignore', openSync(stdoutPath, 'w'), openSync(stderrPath, 'w')],
  });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });

  // The public URL: the portal redirects pages requested under other names.
  const url = `http://localhost:${port}`;
  const logs = () => readFileSync(stderrPath, 'utf8');
  // cargo leptos does not wait for readiness, and neither does spawn: poll.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`portal exited early (${JSON.stringify(exited)}):\n${logs()}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`portal not ready within 60 s:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    stdout: () => readFileSync(stdoutPath, 'utf8'),
    // The one-time first-operator link the portal printed at start.
    setupLink: () => readFileSync(stdoutPath, 'utf8').split('\n').map((l) => l.trim()).find((l) => l.includes('/setup?token=')),
    logs,
    async stop() {
      if (exited) return;
      const done = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await done;
      clearTimeout(timer);
    },
  };
}
