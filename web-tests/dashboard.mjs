// Browser test of livecov's dashboard, in a real headless Chromium (Debian's, driven by
// playwright-core; Playwright's own browsers are never downloaded).
//
// Against a running `livecov server --admin-token TOKEN` with one live instance of the greeter
// example (examples/greeter) registered and no snapshot yet, it checks, as a person would click:
//   1. `/` lists the service greeter with its live instance; its link opens the service page.
//   2. A wrong admin token: "Take snapshot" fails with a message naming the admin token.
//   3. The right token and a label: "Take snapshot" lands on the new snapshot's page, whose
//      files table covers something, and clicking a "Coverage" heading sorts the rows by it
//      (the files table, and a functions table: ascending, then descending). The build's
//      sources were uploaded, so main.go links to its annotated source. The Exclude field,
//      given **/main.go, empties the files table, says so, and its downloads keep the filter;
//      "All files" takes it off.
//   4. Back on the service page (through the trail), with the token kept for the tab: after a
//      request to the greeter (made here with fetch), a second snapshot; the compare form opens
//      the diff of the two, which has newly covered blocks and none lost.
//   5. "Snapshot and reset": cancelling the confirm does nothing; accepting it takes a reset
//      snapshot, drawn as a hollow point of the trend and marked in the history.
//   6. A session started by name, a request while it is open, stopped from its row: the
//      session's snapshot page says what it measures; the service page lists it stopped.
//   7. `/` then links the newest snapshot.
// Any console error, uncaught exception, failed request or HTTP error of the pages fails the run,
// except the one deliberate 401 of step 2. Every page is screenshot (full page PNG).
//
// By hand, from the repository's root (cli/tests/dashboard.rs does the same):
//   scripts/apt-install.sh chromium && (cd web-tests && npm ci)
//   target/release/livecov server --admin-token s3cret &
//   (cd examples/greeter && \
//    livecov build --upload-sources --server http://127.0.0.1:7777 --token s3cret -- -o greeter . && \
//    ADDR=127.0.0.1:8081 LIVECOV_SERVER=http://127.0.0.1:7777 ./greeter &)
//   curl 'http://127.0.0.1:8081/hello?name=qa'
//   node web-tests/dashboard.mjs http://127.0.0.1:7777 s3cret target/screenshots \
//     http://127.0.0.1:8081
// Arguments (or the environment): SERVER_URL ADMIN_TOKEN SCREENSHOT_DIR GREETER_URL, as
// LIVECOV_URL, LIVECOV_ADMIN_TOKEN, SCREENSHOT_DIR and GREETER_URL. CHROMIUM overrides
// /usr/bin/chromium. Exits 0 when every check passed, 1 with the failed check otherwise.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [argServer, argToken, argShots, argGreeter] = process.argv.slice(2);
const server = (argServer || process.env.LIVECOV_URL || '').replace(/\/+$/, '');
const token = argToken || process.env.LIVECOV_ADMIN_TOKEN || '';
const shots = argShots || process.env.SCREENSHOT_DIR || 'target/screenshots';
const greeter = (argGreeter || process.env.GREETER_URL || '').replace(/\/+$/, '');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const SERVICE = 'greeter';

if (!server || !token || !greeter) {
  console.error('usage: node dashboard.mjs SERVER_URL ADMIN_TOKEN [SCREENSHOT_DIR] GREETER_URL\n' +
    '  (or LIVECOV_URL, LIVECOV_ADMIN_TOKEN, SCREENSHOT_DIR, GREETER_URL)');
  process.exit(2);
}

class CheckFailed extends Error {}

function check(cond, what) {
  if (!cond) { throw new CheckFailed(what); }
  console.log(`ok: ${what}`);
}

// Problems the page reported on its own (console errors, exceptions, failed requests).
const problems = [];
// The one 401 the wrong token provokes, allowed while `expecting401` is set.
let expecting401 = false;
let seen401 = 0;
const snapshotsApi = `/api/v1/services/${SERVICE}/snapshots`;

function isDeliberate401(url, status) {
  return expecting401 && status === 401 && new URL(url).pathname === snapshotsApi;
}

// What the next window.confirm answers: true (accept), false (dismiss), or null (not expected).
let confirmAnswer = null;
const confirms = [];

let shotNo = 0;
async function shot(page, name) {
  shotNo += 1;
  const file = path.join(shots, `dashboard-${shotNo}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

/** The numbers in `data-v` of column `col` of the body rows of `table`. */
async function columnValues(table, col) {
  return table.evaluate((t, i) => Array.from(t.tBodies[0].rows,
    (r) => Number(r.cells[i].getAttribute('data-v'))), col);
}

/** Index of the `th` whose text is `text` in `table`. */
async function headingIndex(table, text) {
  const heads = await table.locator('thead th').allTextContents();
  const i = heads.findIndex((h) => h.trim() === text);
  check(i >= 0, `a "${text}" heading in [${heads.join(', ')}]`);
  return i;
}

function sorted(values, dir) {
  return values.every((v, i) => i === 0 || dir * (v - values[i - 1]) >= 0);
}

/** Clicks the "Coverage" heading of `table` twice: rows ascending, then descending. */
async function checkSort(table, what) {
  const col = await headingIndex(table, 'Coverage');
  const before = await columnValues(table, col);
  check(before.length > 0 && before.every((v) => Number.isFinite(v)),
    `${what}: every row has a numeric coverage (${before})`);
  await table.locator('thead th').nth(col).click();
  const up = await columnValues(table, col);
  check(sorted(up, 1) && up.length === before.length,
    `${what}: clicking "Coverage" sorts ascending (${up})`);
  await table.locator('thead th').nth(col).click();
  const down = await columnValues(table, col);
  check(sorted(down, -1) && down.length === before.length,
    `${what}: clicking "Coverage" again sorts descending (${down})`);
}

/** Clicks `button` and waits to land on a snapshot's page; that snapshot's id. */
async function snapshotVia(page, button, what) {
  await Promise.all([
    page.waitForURL(/\/snapshots\/\d+$/, { timeout: 30000 }),
    page.locator(button).click(),
  ]);
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  check(id > 0, `${what} lands on /snapshots/${id}`);
  await page.waitForLoadState('load');
  check((await page.locator('h1').textContent()).trim() === `Snapshot #${id}`,
    `${what}: the page is titled "Snapshot #${id}"`);
  return id;
}

/** Back to the service page through the trail's link. */
async function toServicePage(page) {
  await Promise.all([
    page.waitForURL(`${server}/services/${SERVICE}`),
    page.locator(`nav.trail a[href="/services/${SERVICE}"]`).click(),
  ]);
  await page.waitForLoadState('load');
}

/** `N blocks, M statements` as [N, M]. */
function blocksStmts(text, what) {
  const m = /^(\d+) blocks, (\d+) statements$/.exec(text.trim());
  check(m !== null, `${what} reads "N blocks, M statements": "${text.trim()}"`);
  return [Number(m[1]), Number(m[2])];
}

async function run(page) {
  // 1. The services page.
  await page.goto(`${server}/`);
  const services = page.locator('table.services');
  check(await services.count() === 1, '/ has a services table');
  const link = services.locator(`a[href="/services/${SERVICE}"]`);
  check(await link.count() === 1 && (await link.textContent()).trim() === SERVICE,
    `/ links the service ${SERVICE}`);
  const row = services.locator('tbody tr', {
    has: page.locator(`a[href="/services/${SERVICE}"]`),
  });
  const live = await row.locator('td').nth(1).getAttribute('data-v');
  check(live === '1', `/ shows ${SERVICE} with 1 live instance (${live})`);
  await shot(page, 'services');
  await Promise.all([page.waitForURL(`${server}/services/${SERVICE}`), link.click()]);
  await page.waitForLoadState('load');
  check((await page.locator('h1').textContent()).trim() === SERVICE,
    `the link opens the service page, titled ${SERVICE}`);
  const instances = page.locator('table.instances tbody tr');
  check(await instances.count() === 1 &&
    (await instances.first().locator('td.state-live').count()) === 1,
  'the service page lists one live instance');
  check(await page.locator('#trend').count() === 0, 'no trend before the first snapshot');

  // 2. A wrong token.
  const status = page.locator('output#action-status');
  await page.locator('#token').fill(`not-${token}`);
  expecting401 = true;
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === snapshotsApi),
    page.locator('#take-snapshot').click(),
  ]);
  check(response.status() === 401, `a wrong token gets 401 from the API (${response.status()})`);
  await page.waitForFunction(
    () => document.getElementById('action-status').textContent.startsWith('Failed:'));
  const failure = await status.textContent();
  check(/^Failed:.*admin token/.test(failure), `the failure names the admin token: "${failure}"`);
  check(await status.getAttribute('class') === 'fail', 'the failure is shown as one (class fail)');
  check(await page.locator('#take-snapshot').isEnabled(), 'the buttons work again after a failure');
  check(page.url() === `${server}/services/${SERVICE}`, 'a failure stays on the service page');
  await shot(page, 'service-wrong-token');
  expecting401 = false;

  // 3. The right token and a label: the first snapshot.
  await page.locator('#token').fill(token);
  await page.locator('#label').fill('round 1');
  const first = await snapshotVia(page, '#take-snapshot', 'the first snapshot');
  const meta = await page.locator('dl.meta').first().textContent();
  check(meta.includes('round 1'), 'the snapshot page shows the label "round 1"');
  const files = page.locator('table.files');
  check(await files.count() === 1, 'the snapshot page has a files table');
  const fileNames = await files.locator('tbody tr td:first-child').allTextContents();
  check(fileNames.some((f) => f.endsWith('main.go')), `the files table lists main.go (${fileNames})`);
  const covCol = await headingIndex(files, 'Coverage');
  const fileCov = await columnValues(files, covCol);
  check(fileCov.some((v) => v > 0), `the request before the snapshot is covered (${fileCov})`);
  await checkSort(files, 'the files table');
  const funcs = page.locator('table.funcs');
  check(await funcs.count() === fileNames.length,
    `one functions table per file (${await funcs.count()})`);
  check(await funcs.first().locator('tbody tr').count() > 1, 'the functions table lists functions');
  await checkSort(funcs.first(), 'the functions table');
  await shot(page, 'snapshot');

  // 3b. The build's sources were uploaded: main.go links to its annotated source, where the
  // request's code is marked covered and the rest not.
  const source = page.locator('h2 a.src');
  check(await source.count() === 1, 'the uploaded main.go links to its source');
  await Promise.all([page.waitForURL(/\/snapshots\/\d+\/source\?file=/), source.click()]);
  await page.waitForLoadState('load');
  const pre = page.locator('pre.src');
  check(await pre.count() === 1, 'the source page shows the annotated source');
  check((await pre.textContent()).includes('func hello('), 'the source is main.go');
  check(await pre.locator('span.c1').count() > 0 && await pre.locator('span.c0').count() > 0,
    'the source marks covered and uncovered blocks');
  await shot(page, 'source');
  await page.goBack();
  await page.waitForLoadState('load');

  // 3c. The Exclude field filters files out of the report, and the downloads keep it.
  await page.locator('#exclude').fill('**/main.go');
  await Promise.all([
    page.waitForURL(/[?&]exclude=/),
    page.locator('form.exclude button[type=submit]').click(),
  ]);
  await page.waitForLoadState('load');
  check(await page.locator('table.files tbody tr').count() === 0,
    'with **/main.go excluded, the files table is empty');
  const filtered = await page.locator('dl.meta').first().textContent();
  check(filtered.includes('Excluded from this report') && filtered.includes('1 file (**/main.go)'),
    `the report says what the filter took out (${filtered})`);
  const download = await page.locator('p.downloads a').first().getAttribute('href');
  check(download.includes('exclude=**%2Fmain.go') || download.includes('exclude=%2A%2A%2Fmain.go'),
    `the downloads keep the filter (${download})`);
  const profile = await (await fetch(new URL(download, page.url()))).text();
  check(profile.trim().split('\n').length === 1 && profile.startsWith('mode: '),
    `the filtered coverprofile has no block (${profile})`);
  await shot(page, 'snapshot-excluded');
  await Promise.all([
    page.waitForURL((u) => !u.search.includes('exclude')),
    page.locator('form.exclude a').click(),
  ]);
  await page.waitForLoadState('load');
  check(await page.locator('table.files tbody tr').count() === 1, 'All files lists main.go again');

  // 4. A request to the greeter, a second snapshot, and the diff of the two.
  await toServicePage(page);
  check(await page.locator('#token').inputValue() === token, 'the token is kept for the tab');
  check(await page.locator('#trend circle.point').count() === 1, 'the trend has one point');
  const calc = await fetch(`${greeter}/calc?a=6&b=7&op=mul`);
  const answer = (await calc.text()).trim();
  check(calc.status === 200 && answer === '42', `the greeter computes 6*7 (${calc.status} ${answer})`);
  await page.locator('#label').fill('round 2');
  const second = await snapshotVia(page, '#take-snapshot', 'the second snapshot');
  check(second > first, `the second snapshot is newer (#${second} after #${first})`);
  await toServicePage(page);
  check(await page.locator('#trend circle.point').count() === 2, 'the trend has two points');
  check(await page.locator('table.snapshots tbody tr').count() === 2, 'the history lists two');
  await page.locator('select#diff-a').selectOption(String(first));
  await page.locator('select#diff-b').selectOption(String(second));
  await shot(page, 'service-two-snapshots');
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/diff'),
    page.locator('#compare').click(),
  ]);
  await page.waitForLoadState('load');
  const q = new URL(page.url()).searchParams;
  check(q.get('a') === String(first) && q.get('b') === String(second),
    `compare opens /diff?a=${first}&b=${second} (${page.url()})`);
  const [newly, newlyStmts] = blocksStmts(
    await page.locator('dd#newly-covered').textContent(), 'newly covered');
  check(newly > 0 && newlyStmts > 0, `the diff has newly covered blocks (${newly}, ${newlyStmts})`);
  const [lost] = blocksStmts(
    await page.locator('dd#no-longer-covered').textContent(), 'no longer covered');
  check(lost === 0, `nothing is lost without a reset (${lost})`);
  check(await page.locator('table.diff tbody tr').count() >= 1, 'the diff lists a changed file');
  const newlyFuncs = await page.locator('table.blocks.newly tbody tr td:nth-child(2)')
    .allTextContents();
  check(newlyFuncs.includes('calc') && newlyFuncs.includes('apply'),
    `calc and apply are newly covered (${[...new Set(newlyFuncs)]})`);
  check(await page.locator('table.blocks.lost').count() === 0, 'no table of lost blocks');
  await shot(page, 'diff');

  // 5. Snapshot and reset: cancelled, then accepted.
  await toServicePage(page);
  let posts = 0;
  const countPosts = (r) => { if (r.method() === 'POST') { posts += 1; } };
  page.on('request', countPosts);
  confirmAnswer = false;
  await page.locator('#snapshot-reset').click();
  await page.waitForTimeout(300);
  check(confirms.length === 1 && confirms[0].includes(SERVICE),
    `"Snapshot and reset" asks first, naming the service (${confirms[0]})`);
  check(posts === 0 && page.url() === `${server}/services/${SERVICE}`,
    'cancelling the confirm sends nothing and stays');
  page.off('request', countPosts);
  confirmAnswer = true;
  await page.locator('#label').fill('round 2 done');
  const reset = await snapshotVia(page, '#snapshot-reset', 'snapshot and reset');
  check(confirms.length === 2, 'accepting the confirm went on');
  check(reset > second, `the reset snapshot is the newest (#${reset})`);
  await shot(page, 'snapshot-reset');
  await toServicePage(page);
  const points = page.locator('#trend circle.point');
  check(await points.count() === 3, 'the trend has three points');
  const hollow = page.locator('#trend circle.point.reset');
  check(await hollow.count() === 1, 'one of them is a reset point');
  check(await points.last().evaluate((c) => c.classList.contains('reset')),
    'the reset point is the newest (rightmost)');
  const fill = await hollow.evaluate((c) => getComputedStyle(c).fill);
  const solid = await points.first().evaluate((c) => getComputedStyle(c).fill);
  check(fill === 'rgb(255, 255, 255)' && solid !== fill,
    `the reset point is drawn hollow (fill ${fill}; others ${solid})`);
  check((await hollow.locator('xpath=..').getAttribute('href')) === `/snapshots/${reset}`,
    'the reset point links its snapshot');
  const newest = page.locator('table.snapshots tbody tr').first();
  check((await newest.locator('td').nth(0).textContent()).trim() === `#${reset}` &&
    (await newest.locator('td').nth(3).textContent()).trim() === 'reset',
  'the history marks the newest snapshot as a reset');
  await shot(page, 'service-after-reset');

  // 6. A session: started by name, a request while it is open, stopped: its snapshot's page
  //    says what it measures, and the service page lists it stopped, linking that snapshot.
  check((await page.locator('table.sessions').count()) === 0, 'no session table before the first');
  await page.locator('#session-name').fill('qa session');
  await Promise.all([page.waitForEvent('load'), page.locator('#start-session').click()]);
  const open = page.locator('table.sessions tbody tr');
  check(await open.count() === 1 &&
    (await open.first().locator('td').nth(1).textContent()).trim() === 'open',
  'the started session is listed, open');
  const add = await fetch(`${greeter}/calc?a=1&b=2&op=add`);
  check(add.status === 200, `the greeter adds while the session is open (${add.status})`);
  await Promise.all([
    page.waitForURL(/\/snapshots\/\d+$/),
    open.first().locator('button.stop-session').click(),
  ]);
  const session = Number(page.url().split('/').pop());
  const measures = await page.locator('p.window').textContent();
  check(/session qa session/.test(measures) && /since the instances started/.test(measures),
    `the session's snapshot says what it measures ("${measures}")`);
  await shot(page, 'session-snapshot');
  await toServicePage(page);
  const stopped = page.locator('table.sessions tbody tr').first();
  check((await stopped.locator('td').nth(1).textContent()).trim() === 'stopped' &&
    (await stopped.locator(`a[href="/snapshots/${session}"]`).count()) === 1,
  'the session is listed stopped, with its snapshot');
  await shot(page, 'service-sessions');

  // 7. The services page links the newest snapshot.
  await page.goto(`${server}/`);
  check(await page.locator(`table.services a[href="/snapshots/${session}"]`).count() === 1,
    `/ links the latest snapshot #${session}`);
  await shot(page, 'services-after');

  check(seen401 === 1, `exactly the one deliberate 401 (${seen401})`);
}

async function main() {
  await mkdir(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // As root (tests and CI run as root) Chromium refuses to start with its sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  let failed = null;
  let page = null;
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('console', (msg) => {
      if (msg.type() !== 'error') { return; }
      // Chromium logs a failed fetch as "Failed to load resource: ... 401" from its URL.
      const where = msg.location().url || '';
      if (where && new URL(where).pathname === '/favicon.ico') {
        problems.push(`the browser's request of /favicon.ico failed (${msg.text()}): the ` +
          'dashboard should serve an icon, or name one (<link rel="icon">) in its pages');
        return;
      }
      if (expecting401 && /\b401\b/.test(msg.text()) && where &&
          new URL(where).pathname === snapshotsApi) { return; }
      problems.push(`console error: ${msg.text()} (${where})`);
    });
    page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));
    page.on('requestfailed', (r) => {
      // A navigation away aborts what the page had pending: not a failure of the page.
      const why = r.failure()?.errorText || '';
      if (why === 'net::ERR_ABORTED' && r.resourceType() === 'document') { return; }
      problems.push(`request failed: ${r.method()} ${r.url()}: ${why}`);
    });
    page.on('response', (r) => {
      if (r.status() < 400) { return; }
      if (isDeliberate401(r.url(), r.status())) { seen401 += 1; return; }
      problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    });
    page.on('dialog', async (d) => {
      if (d.type() !== 'confirm' || confirmAnswer === null) {
        problems.push(`unexpected ${d.type()} dialog: ${d.message()}`);
        await d.dismiss();
        return;
      }
      confirms.push(d.message());
      if (confirmAnswer) { await d.accept(); } else { await d.dismiss(); }
    });
    await run(page);
  } catch (e) {
    failed = e instanceof CheckFailed ? `check failed: ${e.message}` : `error: ${e.stack || e}`;
  }
  if (failed && page) {
    try { await shot(page, 'failure'); } catch { /* the page may be gone */ }
  }
  await browser.close();
  if (problems.length > 0) {
    console.error(`FAIL: the pages reported problems:\n  ${problems.join('\n  ')}`);
  }
  if (failed) {
    console.error(`FAIL: ${failed}${page ? ` (at ${page.url()})` : ''}`);
  }
  if (failed || problems.length > 0) { process.exit(1); }
  console.log('dashboard: every check passed');
}

main().catch((e) => {
  console.error(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
