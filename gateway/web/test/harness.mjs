// What the browser tests run against: a real `parley dev` on free ports
// with a temporary data dir (killed and restarted at will), Chromium
// driven by playwright-core, and helpers to act as users.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const web = fileURLToPath(new URL('..', import.meta.url));
const binary = process.env.PARLEY_BIN ?? join(web, '../../bin/parley');
export const chromiumPath = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
export const resultsDir = join(web, 'test-results');
const docsDir = join(web, 'screenshots');

export const PASSWORD = 'correct horse battery';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A `parley dev` process: start(), kill() (SIGKILL), start() again on the same ports and data. */
export class Server {
  proc = null;
  log = '';

  async init() {
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run make build (make test-web does)`);
    this.dir = mkdtempSync(join(tmpdir(), 'parley-web-'));
    this.port = await freePort();
    this.natsPort = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async start() {
    this.proc = spawn(binary, [
      'dev', '--data-dir', this.dir,
      '--http-addr', `127.0.0.1:${this.port}`, '--nats-port', String(this.natsPort), '--nats-http-port', '0',
      '--log-level', 'warn', '--log-format', 'json',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    for (const s of [this.proc.stdout, this.proc.stderr]) s.on('data', (d) => { this.log = (this.log + d).slice(-20_000); });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await fetch(this.url + '/readyz').then((r) => r.ok, () => false);
      if (ready) return;
      if (this.proc.exitCode !== null || Date.now() > deadline) {
        this.proc.kill('SIGKILL');
        await exited;
        throw new Error('parley dev did not become ready:\n' + this.log);
      }
      await sleep(100);
    }
  }

  /** Kills the process at once (no graceful close: clients see their connections drop). */
  async kill() {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGKILL');
    await exited;
  }

  async stop() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Calls the HTTP API; returns the JSON answer, throwing on failure. */
  async api(method, path, body, token) {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await fetch(this.url + path, { method, headers, body: body && JSON.stringify(body) });
    const data = res.status === 204 ? null : await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(data)}`);
    return data;
  }

  /** Registers a user by API: {id, handle, token}. */
  async register(handle, displayName) {
    const s = await this.api('POST', '/api/v1/accounts', { handle, password: PASSWORD, display_name: displayName });
    return { id: s.user.id, handle, displayName, token: s.access_token };
  }

  /** Two registered users who are friends, and their one-to-one room. */
  async friends(a, b) {
    const [ua, ub] = await Promise.all([this.register(...a), this.register(...b)]);
    await this.api('POST', '/api/v1/friends/requests', { user: ub.id }, ua.token);
    await this.api('POST', `/api/v1/friends/requests/${ua.id}/accept`, null, ub.token);
    const room = await this.api('POST', '/api/v1/direct', { user: ub.id }, ua.token);
    return [ua, ub, room.id];
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let unique = Date.now() % 100_000;
/** A fresh handle with a readable stem. */
export const handle = (stem) => `${stem}${(unique++).toString(36)}`;

/** Launches Chromium, or throws a message saying how to get it. */
export async function launch() {
  if (!existsSync(chromiumPath)) throw new Error(`no browser at ${chromiumPath}: apt-get install -y chromium (make test-web does)`);
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export const DESKTOP = { width: 1200, height: 760 };
export const PHONE = { width: 390, height: 780 };

/**
 * A new browser context and page for one user. Page errors and CSP
 * violations are collected in page.problems: a test expects none.
 */
export async function openPage(browser, server, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket connection|Failed to load resource/.test(m.text())) page.problems.push('console: ' + m.text());
  });
  await page.goto(server.url);
  return page;
}

export async function registerUI(page, name, displayName) {
  await page.click('#tab-register');
  await page.fill('input[name=handle]', name);
  await page.fill('input[name=display_name]', displayName);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('#auth-submit');
  await page.waitForSelector('#main:not([hidden])');
}

export async function loginUI(page, name) {
  await page.fill('input[name=handle]', name);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('#auth-submit');
  await page.waitForSelector('#main:not([hidden])');
}

/** Sends a message from the open chat's composer. */
export async function say(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

/** The texts of the open chat's stored messages, in order. */
export const texts = (page) => page.$$eval('#messages .msg .text', (els) => els.map((e) => e.textContent));

/** The list item of a room, by room id. */
export const roomItem = (page, room) => page.locator(`#rooms [data-room="${room}"]`);

/**
 * Saves a screenshot under test-results/screenshots; with
 * PARLEY_UPDATE_SCREENSHOTS=1 those named for the docs are also copied to
 * screenshots/ (committed, shown in README.md).
 */
export async function screenshot(page, name, { docs = false } = {}) {
  const dir = join(resultsDir, 'screenshots');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name + '.png');
  await page.screenshot({ path: file });
  if (docs && process.env.PARLEY_UPDATE_SCREENSHOTS === '1') copyFileSync(file, join(docsDir, name + '.png'));
}

/**
 * Sends messages as the page's user through a second SDK connection made
 * inside the page (same origin, the app's session): quick bulk sending.
 */
export function sendBulk(page, room, texts) {
  return page.evaluate(async ({ room, texts }) => {
    const { ParleyClient } = await import('/sdk/parley.js');
    const session = JSON.parse(localStorage.getItem('parley.session'));
    const c = new ParleyClient({ token: session.accessToken, storage: null });
    await c.connect();
    for (const t of texts) await c.send(room, t);
    c.close();
  }, { room, texts });
}
