// The browser tests' harness: a real gateway on a free port with a temporary data directory,
// accounts made with the real CLI, and Debian's Chromium driven by playwright-core, with
// axe-core run on every page a test visits.
//
// It builds nothing: the gateway binary comes from SEALPOST_BIN (default: the repository's
// target/debug/sealpost), Chromium from SEALPOST_CHROMIUM (default: /usr/bin/chromium).
// Every wait is bounded; everything started is stopped at the end, also when a test fails.

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { after, before } from 'node:test';

import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository's root (the parent of e2e/). */
export const repoRoot = resolve(here, '..');

/** How long the gateway may take to start and answer `/healthz`. */
const START_TIMEOUT_MS = 30_000;
/** How long a stopping gateway gets after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
/** How long one CLI command may run. */
const CLI_TIMEOUT_MS = 60_000;
/** Default bound on each browser action and navigation. */
export const ACTION_TIMEOUT_MS = 15_000;
/** Bound on waits for work done in the page: encrypting, uploading, collecting. */
export const WORK_TIMEOUT_MS = 90_000;

/** A stable viewport, so screenshots compare across runs. */
export const VIEWPORT = { width: 1280, height: 900 };

/** Chromium's flags: headless, no sandbox (root in CI), and no traffic of its own. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The gateway binary under test. */
export function sealpostBin() {
  return process.env.SEALPOST_BIN ? resolve(process.env.SEALPOST_BIN) : join(repoRoot, 'target', 'debug', 'sealpost');
}

/** The Chromium binary that drives the tests. */
export function chromiumPath() {
  return process.env.SEALPOST_CHROMIUM || '/usr/bin/chromium';
}

/** A temporary directory, removed by the returned function unless SEALPOST_E2E_KEEP is set. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), `sealpost-e2e-${prefix}-`));
  const remove = () => {
    if (process.env.SEALPOST_E2E_KEEP) {
      console.error(`# kept ${dir}`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  return { dir, remove };
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with `message` if `promise` has not settled within `ms`. */
export function within(ms, promise, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (gave up after ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `probe` until it returns a truthy value, at most `ms`; returns that value. */
export async function until(ms, probe, message) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`${message} (gave up after ${ms} ms${last ? `; last error: ${last.message}` : ''})`);
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------------------------

/**
 * A running gateway: `sealpost serve` on 127.0.0.1 with a temporary data directory.
 * `config` (optional) is the text of a `sealpost.toml` it starts with.
 */
export class Gateway {
  /**
   * Starts a gateway and waits until `/healthz` answers 200. `env` adds variables to the
   * gateway's environment (e.g. `SEALPOST_OIDC_ISSUER`); `port` makes it listen on that port
   * instead of a free one the system picks (see {@link freePort}: a provider's redirect URI
   * needs the gateway's address before the gateway starts).
   */
  static async start({ config, env = {}, port = 0 } = {}) {
    const bin = sealpostBin();
    if (!existsSync(bin)) {
      throw new Error(
        `the gateway binary \`${bin}\` does not exist: build it with \`cargo build\` or point SEALPOST_BIN at one`,
      );
    }
    const tmp = tempDir('gateway');
    const gw = new Gateway(bin, tmp);
    gw.serveEnv = env;
    gw.port = port;
    try {
      await gw.#spawn(config);
    } catch (e) {
      await gw.stop();
      throw e;
    }
    return gw;
  }

  constructor(bin, tmp) {
    this.bin = bin;
    this.tmp = tmp;
    this.dataDir = join(tmp.dir, 'data');
    this.home = join(tmp.dir, 'home');
    this.logPath = join(tmp.dir, 'gateway.log');
    mkdirSync(this.home);
    this.child = null;
    this.url = null;
  }

  async #spawn(config) {
    const args = ['serve', '--data-dir', this.dataDir, '--listen', `127.0.0.1:${this.port ?? 0}`, '--log-format', 'json'];
    if (config) {
      const path = join(this.tmp.dir, 'sealpost.toml');
      writeFileSync(path, config);
      args.push('--config', path);
    }
    const log = createWriteStream(this.logPath);
    // cwd is the temporary directory, so no stray ./sealpost.toml is read.
    const child = spawn(this.bin, args, {
      cwd: this.tmp.dir,
      env: { ...this.#baseEnv(), RUST_LOG: 'info,sqlx=warn', ...this.serveEnv },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    // If the test process ends without `stop` (a crash, the runner's SIGTERM, Ctrl-C), take the
    // gateway with it.
    this.onExit = () => child.exitCode === null && child.kill('SIGKILL');
    this.onSignal = (signal) => {
      this.onExit();
      this.tmp.remove();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.once('exit', this.onExit);
    process.once('SIGTERM', this.onSignal);
    process.once('SIGINT', this.onSignal);

    const lines = createInterface({ input: child.stderr });
    const bound = new Promise((resolveBound, rejectBound) => {
      lines.on('line', (line) => {
        log.write(line + '\n');
        if (this.url) return;
        try {
          const entry = JSON.parse(line);
          if (entry.fields?.message === 'sealpost is listening') resolveBound(entry.fields.bound);
        } catch {
          // Not a JSON log line (e.g. the note about the admin token): keep it in the log only.
        }
      });
      this.exited.then(({ code, signal }) =>
        rejectBound(new Error(`the gateway exited before listening (code ${code}, signal ${signal})`)),
      );
    });
    let address;
    try {
      address = await within(START_TIMEOUT_MS, bound, 'the gateway did not say where it listens');
    } catch (e) {
      throw new Error(`${e.message}\n--- gateway log ---\n${this.logTail()}`);
    }
    this.url = `http://${address}`;
    await until(START_TIMEOUT_MS, async () => (await fetch(`${this.url}/healthz`)).status === 200, 'healthz');
    this.adminToken = readFileSync(join(this.dataDir, 'admin.token'), 'utf8').trim();
  }

  /** The environment every command gets: no profile, no user config, no proxy. */
  #baseEnv() {
    const env = { PATH: process.env.PATH, HOME: this.home, LANG: 'C.UTF-8', TZ: 'UTC' };
    env.SEALPOST_CONFIG_FILE = join(this.home, 'no-profiles.toml');
    return env;
  }

  /** The last lines the gateway logged (for failure messages). */
  logTail(lines = 40) {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Stops the gateway (SIGTERM, then SIGKILL after a bound) and removes its directory. */
  async stop() {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      try {
        await within(STOP_TIMEOUT_MS, this.exited, 'the gateway did not stop on SIGTERM');
      } catch (e) {
        console.error(`# ${e.message}: killing it`);
        child.kill('SIGKILL');
        await within(STOP_TIMEOUT_MS, this.exited, 'the gateway did not die on SIGKILL');
      }
    }
    if (this.onExit) {
      process.removeListener('exit', this.onExit);
      process.removeListener('SIGTERM', this.onSignal);
      process.removeListener('SIGINT', this.onSignal);
    }
    this.tmp.remove();
  }

  /**
   * Runs `sealpost ARGS…` against this gateway as `token` (default: the admin). Resolves with
   * `{stdout, stderr}`; rejects with both when the command fails.
   */
  cli(args, { token = this.adminToken, env = {}, cwd = this.tmp.dir, encoding = 'utf8' } = {}) {
    const fullEnv = { ...this.#baseEnv(), SEALPOST_URL: this.url, SEALPOST_TOKEN: token, ...env };
    return run(this.bin, args, { env: fullEnv, cwd, encoding });
  }

  /** Adds an organisation. */
  async org(name, kind) {
    await this.cli(['admin', 'org', 'add', name, '--kind', kind]);
  }

  /** Lets organisation `from` send to `to`. */
  async route(from, to) {
    await this.cli(['admin', 'route', 'add', from, to]);
  }

  /** Adds user `ref` (`ORG/NAME`) with `role`; returns their API token. */
  async user(ref, role) {
    const { stdout } = await this.cli(['admin', 'user', 'add', ref, '--role', role]);
    const token = stdout.trim();
    assert.match(token, /^sp_[A-Za-z0-9_-]+$/, `\`admin user add\` printed no token: ${stdout}`);
    return token;
  }

  /** Makes an age identity at `path` with `sealpost keygen`; returns its `age1…` recipient. */
  async keygen(path) {
    const { stdout } = await this.cli(['keygen', '-o', path]);
    const recipient = stdout.trim();
    assert.match(recipient, /^age1[0-9a-z]+$/, `\`keygen\` printed no recipient: ${stdout}`);
    return recipient;
  }

  /** Makes an Ed25519 signing key at `path` with `sealpost keygen --signing`; returns its
   * `sealpost-signing1…` public key. */
  async signingKeygen(path) {
    const { stdout } = await this.cli(['keygen', '--signing', '-o', path]);
    const key = stdout.trim();
    assert.match(key, /^sealpost-signing1[A-Za-z0-9_-]{43}$/, `\`keygen --signing\` printed no signing key: ${stdout}`);
    return key;
  }

  /** Registers `recipient` as a key of the user holding `token`. */
  async addKey(token, recipient) {
    await this.cli(['keys', 'add', recipient], { token });
  }

  /**
   * A recipient with a key: the user `ref` (recipient role), an identity file in `dir`, its
   * public half registered. Returns `{ref, token, identity, recipient}`.
   */
  async recipient(ref, dir) {
    const token = await this.user(ref, 'recipient');
    const identity = join(dir, `${ref.replace('/', '-')}.key`);
    const recipient = await this.keygen(identity);
    await this.addKey(token, recipient);
    return { ref, token, identity, recipient };
  }

  /**
   * Sends `files` (paths) with `sealpost send` as `token` to `to` (one or more `ORG/NAME`),
   * signed with the key file `signingKey` when given; returns the gateway's answer (`id`,
   * `status`, `links`…).
   */
  async send(token, files, { to, expires, classification, signingKey } = {}) {
    const args = ['send', '--json', '-q'];
    for (const r of [].concat(to)) args.push('--to', r);
    if (expires) args.push('--expires', expires);
    if (classification) args.push('--classification', classification);
    if (signingKey) args.push('--signing-key', signingKey);
    const { stdout } = await this.cli([...args, ...files], { token });
    return JSON.parse(stdout);
  }

  /** Collects `link` with `sealpost fetch` as `token` and extracts the files into `dir`. */
  async fetchInto(token, link, identity, dir) {
    return this.cli(['fetch', link, '-i', identity, '--dir', dir, '-q'], { token });
  }

  /** Redeems a link's token through the API as `token`; returns the ciphertext's bytes. */
  async redeem(token, link) {
    const { status, body } = await this.api('POST', '/api/v1/redeem', { token, json: { token: linkToken(link) } });
    assert.equal(status, 200, `redeem: ${Buffer.isBuffer(body) ? body.toString() : JSON.stringify(body)}`);
    return body;
  }

  /** A JSON API call as `token`; returns `{status, headers, body}` (body parsed when JSON). */
  async api(method, path, { token = this.adminToken, json, headers = {}, body } = {}) {
    const init = { method, headers: { Authorization: `Bearer ${token}`, ...headers } };
    if (json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
      init.duplex = 'half';
    }
    const response = await within(ACTION_TIMEOUT_MS, fetch(`${this.url}${path}`, init), `${method} ${path}`);
    const type = response.headers.get('content-type') || '';
    const raw = Buffer.from(await response.arrayBuffer());
    const parsed = type.includes('json') && raw.length ? JSON.parse(raw.toString('utf8')) : raw;
    return { status: response.status, headers: response.headers, body: parsed };
  }

  /** Every audit entry (as the admin), oldest first, optionally of one transfer. */
  async audit({ transfer } = {}) {
    const entries = [];
    let after;
    for (let page = 0; page < 100; page++) {
      const query = new URLSearchParams({ limit: '1000' });
      if (transfer) query.set('transfer', transfer);
      if (after !== undefined) query.set('after', String(after));
      const { status, body } = await this.api('GET', `/api/v1/audit?${query}`);
      assert.equal(status, 200, `audit: ${JSON.stringify(body)}`);
      entries.push(...body.events);
      if (body.next === undefined || body.next === null) return entries;
      after = body.next;
    }
    throw new Error('the audit trail has more than 100 pages');
  }
}

/** A TCP port on 127.0.0.1 that is free now (listened on and closed again). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((r, reject) => server.listen(0, '127.0.0.1', r).once('error', reject));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** Runs a program with a time bound; rejects with its output when it fails. */
export function run(file, args, { env, cwd, encoding = 'utf8', input } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      file,
      args,
      { env, cwd, encoding, timeout: CLI_TIMEOUT_MS, maxBuffer: 256 << 20, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error) {
          const shown = [file, ...args].join(' ');
          error.message = `\`${shown}\` failed (${error.code ?? error.signal}):\n${stderr}${stdout ? `\nstdout: ${stdout}` : ''}`;
          error.stdout = stdout;
          error.stderr = stderr;
          reject(error);
        } else {
          resolvePromise({ stdout, stderr });
        }
      },
    );
    if (input !== undefined) child.stdin.end(input);
  });
}

/**
 * A TCP relay between the browser and the gateway that can drop every connection at once, as a
 * failing network does. (Chromium's offline switch fails new requests but lets an upload already
 * under way finish, so it cannot cut one mid-way by itself.)
 */
export class Relay {
  /** Listens on a free port; `target()` is set once the gateway is up. */
  static async start() {
    const relay = new Relay();
    await new Promise((r, reject) => relay.server.listen(0, '127.0.0.1', r).once('error', reject));
    relay.url = `http://127.0.0.1:${relay.server.address().port}`;
    return relay;
  }

  constructor() {
    this.sockets = new Set();
    this.target = null;
    this.cuts = 0;
    this.server = net.createServer((client) => {
      if (!this.target) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  /** Forwards to the gateway at `url`. */
  forwardTo(url) {
    const u = new URL(url);
    this.target = { host: u.hostname, port: Number(u.port) };
  }

  /** Drops every open connection, both ways, mid-stream. */
  cut() {
    this.cuts += 1;
    for (const s of this.sockets) (s.resetAndDestroy ?? s.destroy).call(s);
  }

  /** Stops listening and drops what is open. */
  async close() {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}

/** The token of a link (`…/d#TOKEN`). */
export function linkToken(link) {
  const token = link.slice(link.indexOf('#') + 1);
  assert.match(token, /^[A-Za-z0-9_-]{20,}$/, `\`${link}\` is not a link with a token after #`);
  return token;
}

/** Decrypts `input` with the Go `age` CLI and `identity` into `output`. */
export async function ageDecrypt(identity, input, output) {
  await run('age', ['-d', '-i', identity, '-o', output, input], { env: process.env });
}

/** Encrypts `input` with the Go `age` CLI to `recipients` into `output`. */
export async function ageEncrypt(recipients, input, output) {
  const args = ['-e', '-o', output];
  for (const r of recipients) args.push('-r', r);
  await run('age', [...args, input], { env: process.env });
}

/** The member names of a tar file, as GNU tar lists them. */
export async function tarList(file) {
  const { stdout } = await run('tar', ['-tf', file], { env: process.env });
  return stdout.split('\n').filter(Boolean);
}

/**
 * The people most tests need, made with the CLI: organisations `acme` (contractor, with a route
 * to `hmpps`), `hmpps` (agency) and `ico` (compliance); `acme/bob` (sender, with a registered
 * signing key file `signingKey` for `sealpost send --signing-key`), `hmpps/alice` and
 * `hmpps/carol` (recipients with keys), `ico/olga` (compliance), and the admin.
 */
export async function makeCast(gw, dir) {
  await gw.org('acme', 'contractor');
  await gw.org('hmpps', 'agency');
  await gw.org('ico', 'compliance');
  await gw.route('acme', 'hmpps');
  const bob = { ref: 'acme/bob', token: await gw.user('acme/bob', 'sender') };
  bob.signingKey = join(dir, 'acme-bob.sign');
  bob.signingPublic = await gw.signingKeygen(bob.signingKey);
  await gw.addKey(bob.token, bob.signingPublic);
  const alice = await gw.recipient('hmpps/alice', dir);
  const carol = await gw.recipient('hmpps/carol', dir);
  const olga = { ref: 'ico/olga', token: await gw.user('ico/olga', 'compliance') };
  const admin = { ref: 'admin', token: gw.adminToken };
  return { bob, alice, carol, olga, admin };
}

// ---------------------------------------------------------------------------------------------
// Accessibility: axe-core in the page
// ---------------------------------------------------------------------------------------------

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Formats axe violations, one per rule, with the elements that fail. */
export function describeViolations(violations) {
  return violations
    .map((v) => {
      const nodes = v.nodes
        .slice(0, 5)
        .map((n) => `    - ${n.target.join(' ')}: ${n.failureSummary?.replace(/\s+/g, ' ') ?? ''}`)
        .join('\n');
      const more = v.nodes.length > 5 ? `\n    … and ${v.nodes.length - 5} more` : '';
      return `  ${v.id} (${v.impact}): ${v.help}\n${nodes}${more}`;
    })
    .join('\n');
}

/**
 * Runs axe-core on the page as it is now and returns its violations. The source goes in through
 * the DevTools protocol (not a <script> tag), so the page's strict CSP stays in force.
 */
export async function axeViolations(page) {
  const present = await page.evaluate(() => typeof window.axe === 'object');
  if (!present) await page.evaluate(axeSource);
  const results = await page.evaluate(async () =>
    window.axe.run(document, { resultTypes: ['violations'] }),
  );
  return results.violations;
}

// ---------------------------------------------------------------------------------------------
// The browser and the people using it
// ---------------------------------------------------------------------------------------------

/** Launches Debian's Chromium, or fails saying how to install it. */
export async function launchBrowser() {
  const path = chromiumPath();
  if (!existsSync(path)) {
    throw new Error(
      `Chromium is not installed at ${path}: the browser tests need Debian's chromium. ` +
        'Install it with `apt-get install -y chromium` (or set SEALPOST_CHROMIUM to its path).',
    );
  }
  return chromium.launch({ executablePath: path, headless: true, args: CHROMIUM_ARGS, timeout: START_TIMEOUT_MS });
}

/**
 * One person at one browser: a fresh context (no cookies, storage or keys from anyone else),
 * one page, downloads saved into a temporary directory, axe-core run by `check()` on every page
 * reached, and CSP violations and script errors collected. `finish()` fails the test for any
 * page visited but never checked, any CSP violation and any uncaught script error.
 */
export class Person {
  static async open(browser, gw, name, base = gw.url) {
    const context = await browser.newContext({ acceptDownloads: true, viewport: VIEWPORT, locale: 'en-GB' });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
    const page = await context.newPage();
    return new Person(name, gw, base, context, page);
  }

  constructor(name, gw, base, context, page) {
    this.name = name;
    this.gw = gw;
    this.base = base;
    this.context = context;
    this.page = page;
    this.tmp = tempDir(`downloads-${name}`);
    this.downloads = [];
    this.visited = new Set();
    this.checked = new Set();
    this.problems = [];
    this.#savePending = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) this.visited.add(pathOf(frame.url()));
    });
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(message.text())) {
        this.problems.push(`CSP violation on ${pathOf(page.url())}: ${message.text()}`);
      }
    });
    page.on('pageerror', (error) => this.problems.push(`script error on ${pathOf(page.url())}: ${error.message}`));
    page.on('download', (download) => {
      const saved = (async () => {
        const name = download.suggestedFilename();
        const failure = await download.failure();
        if (failure) {
          this.problems.push(`download ${name} failed: ${failure}`);
          return;
        }
        const path = join(this.tmp.dir, `${this.downloads.length}-${name}`);
        await download.saveAs(path);
        this.downloads.push({ name, path, bytes: readFileSync(path) });
      })();
      this.#savePending.push(saved);
    });
  }

  #savePending;

  /** The gateway URL of `path`. */
  url(path) {
    return `${this.base}${path}`;
  }

  /** Goes to `path` (on the gateway), expects a page (2xx after redirects) and checks it. */
  async goto(path) {
    const response = await this.page.goto(this.url(path), { waitUntil: 'load' });
    const status = response?.status();
    const type = response?.headers()['content-type'] ?? '';
    assert.ok(
      response?.ok() && type.startsWith('text/html'),
      `GET ${path} answered ${status} ${type}, not a page${status === 404 ? ' (the page is not there yet?)' : ''}`,
    );
    await this.check();
    return response;
  }

  /** Waits for the current page to load, then runs axe-core on it; fails on any violation. */
  async check(what = '') {
    await this.page.waitForLoadState('load');
    const path = pathOf(this.page.url());
    const violations = await axeViolations(this.page);
    this.checked.add(path);
    assert.deepEqual(
      violations.map((v) => v.id),
      [],
      `axe-core found accessibility violations on ${path}${what ? ` (${what})` : ''}:\n${describeViolations(violations)}`,
    );
  }

  /** Signs in on `/sign-in` with `token`, as a person would, and checks where it lands. */
  async signIn(token) {
    await this.goto('/sign-in');
    await this.page.getByLabel('API token', { exact: true }).fill(token);
    await Promise.all([
      this.page.waitForURL((u) => !u.pathname.startsWith('/sign-in')),
      this.page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    await this.check('after signing in');
    await this.page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();
  }

  /** Waits until at least `count` downloads have been saved; returns them. */
  async waitForDownloads(count, timeout = WORK_TIMEOUT_MS) {
    await until(timeout, async () => {
      await Promise.all(this.#savePending);
      return this.downloads.length >= count;
    }, `${this.name} expected ${count} downloads, has ${this.downloads.length}`);
    return this.downloads;
  }

  /** Fails for unchecked pages, CSP violations and script errors; closes the context. */
  async finish() {
    try {
      await within(WORK_TIMEOUT_MS, Promise.all(this.#savePending), 'downloads still saving');
      const unchecked = [...this.visited].filter((p) => p !== 'about:blank' && !this.checked.has(p));
      assert.deepEqual(unchecked, [], `${this.name} visited pages that axe-core never checked`);
      assert.deepEqual(this.problems, [], `${this.name}'s browser reported problems`);
    } finally {
      await this.context.close().catch(() => {});
      this.tmp.remove();
    }
  }
}

/** A URL's path (what pages are known by), or the URL itself when it has none. */
function pathOf(url) {
  try {
    const u = new URL(url);
    return u.protocol.startsWith('http') ? u.pathname : url;
  } catch {
    return url;
  }
}

// ---------------------------------------------------------------------------------------------
// A suite: one gateway, one browser and a cast per test file
// ---------------------------------------------------------------------------------------------

/**
 * Registers `before`/`after` hooks that start a gateway (with `config`), make the cast and
 * launch Chromium, and stop everything at the end. With `relay`, the browser reaches the gateway
 * through a {@link Relay} (`suite.relay`), which is also the gateway's public URL. The returned object is filled in by
 * `before`; `suite.person(t, name)` opens a fresh browser context, checked and closed when the
 * test `t` ends.
 */
export function useSuite({ config = '', relay = false, browser: wantBrowser = true, prepare } = {}) {
  const suite = { cleanups: [] };
  before(async () => {
    suite.files = tempDir('files');
    suite.dir = suite.files.dir;
    if (relay) {
      suite.relay = await Relay.start();
      config = `public_url = "${suite.relay.url}"\n${config}`;
    }
    // `prepare(suite)` runs before the gateway starts (e.g. an identity provider that needs the
    // gateway's address) and may answer `{ config, env, port }` for it; what it pushes onto
    // `suite.cleanups` runs at the end, after the gateway has stopped.
    const prepared = prepare ? (await prepare(suite)) ?? {} : {};
    if (prepared.config) config = `${config}\n${prepared.config}`;
    suite.gw = await Gateway.start({ config: config || undefined, env: prepared.env, port: prepared.port });
    suite.relay?.forwardTo(suite.gw.url);
    suite.cast = await makeCast(suite.gw, suite.dir);
    if (wantBrowser) suite.browser = await launchBrowser();
  });
  after(async () => {
    await suite.browser?.close().catch((e) => console.error(`# closing Chromium: ${e.message}`));
    await suite.relay?.close();
    await suite.gw?.stop();
    for (const cleanup of suite.cleanups.reverse()) await cleanup();
    suite.files?.remove();
  });
  suite.person = async (t, name) => {
    const person = await Person.open(suite.browser, suite.gw, name, suite.relay?.url);
    // Runs when the test ends, passed or failed: its assertions fail the test.
    t.after(() => person.finish());
    return person;
  };
  return suite;
}
