// Shared pieces of the browser suite: the real hearth binary on a free port
// with a throwaway data dir, Debian's Chromium driven by playwright-core, an
// HTTP client for seeding data, and watchers for anything a page must never do
// (dialogs, uncaught errors, CSP violations).

import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.join(here, 'artifacts');
const HEARTH_BIN = path.resolve(here, process.env.HEARTH_BIN ?? '../../target/debug/hearth');
export const PASSWORD = 'correct horse battery staple';

/** A free TCP port on the loopback interface. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** One hearth server process; `restart` keeps its port and data dir. */
export class TestServer {
  /** @param {Record<string, string>} [env] extra environment, e.g. tighter rate limits */
  static async start(env = {}) {
    await fs.access(HEARTH_BIN).catch(() => {
      throw new Error(`no hearth binary at ${HEARTH_BIN}: run \`cargo build\` first, or set HEARTH_BIN`);
    });
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-browser-'));
    const server = new TestServer(await freePort(), dataDir, env);
    await server.spawn();
    return server;
  }

  constructor(port, dataDir, env) {
    this.port = port;
    this.dataDir = dataDir;
    this.url = `http://127.0.0.1:${port}`;
    this.env = {
      HEARTH_SIGNUP_BURST: '1000',
      HEARTH_LOGIN_PER_MINUTE: '1000',
      ...env,
    };
    this.output = '';
    this.process = null;
  }

  async spawn() {
    const child = spawn(HEARTH_BIN, ['serve', '--listen', `127.0.0.1:${this.port}`, '--data', this.dataDir], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process = child;
    const ready = `listening on ${this.url}`;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hearth did not start in time:\n${this.output}`)), 20_000);
      const onData = (chunk) => {
        this.output += chunk;
        if (this.output.includes(ready)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk) => (this.output += chunk));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`hearth exited (${code ?? signal}) before listening:\n${this.output}`));
      });
      child.once('error', reject);
    });
    // Once listening, the exit listener above must not reject anything any more.
    child.removeAllListeners('exit');
  }

  /** Stops the process the hard way (SIGKILL by default), as a crash would. */
  async kill(signal = 'SIGKILL') {
    const child = this.process;
    if (!child || child.exitCode != null || child.signalCode != null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  async restart() {
    await this.kill();
    this.output = '';
    await this.spawn();
  }

  async stop() {
    await this.kill('SIGTERM');
    await fs.rm(this.dataDir, { recursive: true, force: true });
  }

  /**
   * Calls the JSON API. Returns {status, body, headers}; never throws on an
   * HTTP error status, so tests can assert on errors.
   */
  async api(method, apiPath, { token, body, headers = {} } = {}) {
    const response = await fetch(`${this.url}/api/v1${apiPath}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: response.status, body: json, headers: response.headers };
  }

  /**
   * Makes an invite code with the operator's CLI, as an administrator would
   * (it reaches the running server through its data directory).
   */
  async inviteCode(uses = 1) {
    const { stdout } = await promisify(execFile)(HEARTH_BIN, [
      'invite', 'create', '--uses', String(uses), '--data', this.dataDir, '--json',
    ]);
    return JSON.parse(stdout).code;
  }

  /** Like `api`, but fails the test unless the status is the expected one. */
  async must(expected, method, apiPath, options) {
    return expectStatus(expected, method, apiPath, await this.api(method, apiPath, options));
  }

  /**
   * Like `must`, but waits and tries again while the server answers `503
   * busy`, as a client would: password hashing runs in the idle scheduling
   * class, which a machine busy with other work can hold up past its
   * queue's wait. At most 20 tries, a second apart.
   */
  async mustUnlessBusy(expected, method, apiPath, options) {
    let reply;
    for (let tries = 1; ; tries++) {
      reply = await this.api(method, apiPath, options);
      const busy = reply.status === 503 && reply.body?.error?.code === 'busy';
      if (!busy || tries === 20) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return expectStatus(expected, method, apiPath, reply);
  }

  /** Signs a user up and logs them in over HTTP; returns {user, token}. */
  async createUser(username) {
    await this.mustUnlessBusy(201, 'POST', '/signup', {
      body: { username, email: `${username}@example.test`, password: PASSWORD },
    });
    return this.mustUnlessBusy(200, 'POST', '/login', { body: { login: username, password: PASSWORD } });
  }

  /** Posts a message as `token`, waiting out rate limits so seeding never flakes. */
  async post(token, roomId, body, clientId) {
    for (;;) {
      const reply = await this.api('POST', `/rooms/${roomId}/messages`, {
        token,
        body: clientId ? { body, client_id: clientId } : { body },
      });
      if (reply.status === 201) return reply.body.message;
      if (reply.status !== 429) {
        throw new Error(`posting failed: ${reply.status} ${JSON.stringify(reply.body)}`);
      }
      const seconds = Number(reply.headers.get('retry-after') ?? '1');
      await new Promise((resolve) => setTimeout(resolve, Math.max(0.1, seconds) * 1000));
    }
  }
}

/** A reply's body, or an error naming the call unless its status is `expected`. */
function expectStatus(expected, method, apiPath, reply) {
  if (reply.status !== expected) {
    throw new Error(`${method} ${apiPath}: expected ${expected}, got ${reply.status} ${JSON.stringify(reply.body)}`);
  }
  return reply.body;
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
  });
}

/**
 * A fresh browser profile (its own cookies: a separate person) with one page,
 * watched for dialogs, uncaught errors and CSP violations.
 * @returns {Promise<{context, page, trouble: Trouble}>}
 */
export async function openPerson(browser, contextOptions = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
  await context.addInitScript(() => {
    window.__pwned = false;
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__cspViolations.push(`${event.violatedDirective}: ${event.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const trouble = new Trouble(page);
  return { context, page, trouble };
}

/** Collects what a page must never do. */
export class Trouble {
  constructor(page) {
    this.page = page;
    this.dialogs = [];
    this.pageErrors = [];
    this.consoleErrors = [];
    page.on('dialog', (dialog) => {
      this.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    page.on('pageerror', (error) => this.pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') this.consoleErrors.push(message.text());
    });
  }

  /**
   * Console errors other than the browser's own network notes (a 401 from
   * /me while logged out, a refused socket while the server is down).
   */
  get unexpectedConsoleErrors() {
    return this.consoleErrors.filter(
      (text) => !/^Failed to load resource|^WebSocket connection to .* failed/.test(text),
    );
  }

  /** Everything that went wrong, as one list; empty when all is well. */
  async problems() {
    const violations = await this.page.evaluate(() => window.__cspViolations ?? []).catch(() => []);
    return [
      ...this.dialogs.map((d) => `dialog ${d}`),
      ...this.pageErrors.map((e) => `uncaught ${e}`),
      ...this.unexpectedConsoleErrors.map((e) => `console ${e}`),
      ...violations.map((v) => `CSP violation ${v}`),
    ];
  }
}

// ---- What a person does in the UI ------------------------------------------------

export async function signUpInUi(page, server, username) {
  await page.goto(server.url);
  await page.getByRole('button', { name: 'Create an account' }).click();
  const form = page.locator('#signup-form');
  await form.getByLabel('Username', { exact: true }).fill(username);
  await form.getByLabel('Email').fill(`${username}@example.test`);
  await form.getByLabel('Password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('#app-view').waitFor();
}

export async function logInInUi(page, server, login, password = PASSWORD) {
  await page.goto(server.url);
  const form = page.locator('#login-form');
  await form.getByLabel('Username or email').fill(login);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#app-view').waitFor();
}

export async function createRoomInUi(page, name, topic = '') {
  const form = page.locator('#create-room');
  if (!(await form.evaluate((details) => details.open))) await form.locator('summary').click();
  // Scoped to the form: the room's details have a Name and a Topic too.
  await form.getByLabel('Name', { exact: true }).fill(name);
  if (topic) await form.getByLabel('Topic').fill(topic);
  await page.getByRole('button', { name: 'Create room' }).click();
  await page.locator('#room-title', { hasText: name }).waitFor();
}

export async function sendInUi(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  // On a touch screen Enter is a new line and the send button sends.
  if (await page.evaluate(() => matchMedia('(pointer: coarse)').matches)) {
    await box.fill(text);
    await page.getByRole('button', { name: 'Send message' }).click();
    return;
  }
  const lines = text.split('\n');
  await box.fill(lines[0]);
  for (const line of lines.slice(1)) {
    await box.press('Shift+Enter');
    await box.pressSequentially(line);
  }
  await box.press('Enter');
}

/** The id of the room open in the page, from the address bar. */
export function openRoomId(page) {
  const match = /^#\/room\/([^/]+)/.exec(new URL(page.url()).hash);
  return match ? decodeURIComponent(match[1]) : null;
}

/** The bodies of the confirmed messages on screen, in display order. */
export async function shownBodies(page) {
  return page.locator('#messages li[data-seq] .message-body').allInnerTexts();
}

/** The seqs of the confirmed messages on screen, in display order. */
export async function shownSeqs(page) {
  return page.locator('#messages li[data-seq]').evaluateAll((items) => items.map((li) => Number(li.dataset.seq)));
}

export async function screenshot(page, name) {
  await fs.mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/** Polls `read` until it returns something truthy (or `predicate(value)` holds). */
export async function eventually(read, { timeout = 10_000, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await read();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
