// Browser test of the web console, run by run.sh against a Fusion it started and fed
// (feed.mjs). Env: FUSION_URL, CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.FUSION_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOT_DIR;
const FS_KEY = 'query-secret';
const FOREST_KEY = 'query-secret-forest';
const ADMIN_KEY = 'admin-secret';
const WEIRD = '<img src=x onerror=alert(1)> & "q".txt';

assert.ok(BASE, 'FUSION_URL must be set (run tests/browser/run.sh)');

let profile;
let context;
let page;
const problems = []; // dialogs, page errors, CSP violations, failed requests

async function api(path, key) {
  const r = await fetch(`${BASE}${path}`, { headers: { 'X-API-Key': key } });
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

const row = (path) => page.locator(`#tree .row[data-path="${path.replace(/["\\]/g, '\\$&')}"]`);

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'fustor-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(10000);
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[13]|status of 503/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
});

after(async () => {
  if (context) await context.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('serves the page with a self-only CSP and asks for a key', async () => {
  const resp = await page.goto(`${BASE}/ui`);
  assert.equal(resp.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/ui/');
  const csp = resp.headers()['content-security-policy'] || '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  await page.locator('#key-prompt').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#main').isVisible(), false);
});

test('a wrong key is refused, the view key opens the stats panel', async () => {
  await page.fill('#key-input', 'not-a-key');
  await page.click('#key-submit');
  await page.locator('#key-message', { hasText: 'refused' }).waitFor();
  await page.fill('#key-input', FS_KEY);
  await page.click('#key-submit');
  await page.locator('#stats [data-k="total_files"] dd').waitFor();
  assert.equal(await page.locator('#view-select').inputValue(), 'research');
  const s = await api('/api/v1/views/research/stats', FS_KEY);
  assert.equal(await page.textContent('#stats [data-k="total_files"] dd'), s.total_files.toLocaleString('en-US'));
  assert.equal(await page.textContent('#stats [data-k="suspect_file_count"] dd'), String(s.suspect_file_count));
  assert.equal(await page.textContent('#stats [data-k="has_blind_spot"] dd'), 'yes');
  assert.equal(await page.textContent('#stats [data-k="audit_cycle_count"] dd'), '1');
  assert.equal(s.suspect_file_count, 2);
  // sessions panel: the fake agent, leader, realtime, heartbeat age
  const sess = page.locator('#sessions tbody tr');
  await sess.first().waitFor();
  assert.equal(await sess.count(), 1);
  const cells = await sess.first().locator('td').allTextContents();
  assert.deepEqual(cells.slice(0, 3), ['lab-nfs-01', 'leader', 'yes']);
  assert.match(cells[3], /ago$/);
  assert.equal(cells[4], 'research');
  // the key is kept for the tab only
  assert.equal(await page.evaluate(() => sessionStorage.getItem('fustor.console.key')), FS_KEY);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
});

test('tree: expands directories lazily, shows sizes and markers, escapes names', async () => {
  await row('/data').waitFor();
  assert.equal(await row('/data/run42').count(), 0, 'children are loaded on demand');
  await row('/data').click();
  await row('/data/run42').waitFor();
  await row('/data/run42').click();
  await row('/data/run42/sample_001.h5').waitFor();
  assert.equal(await row('/data/run42/sample_001.h5').locator('.size').textContent(), '700 MiB');
  assert.match(await row('/data/run42/sample_001.h5').locator('.mtime').textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  // found by the audit only: "no agent" marker and blind-spot marker
  const orphan = row('/data/run42/orphan.dat');
  await orphan.waitFor();
  assert.equal(await orphan.locator('.badge.noagent').isVisible(), true);
  await page.locator('#tree .row.blind[data-path="/data/run42/orphan.dat"] .badge.blind').waitFor({ state: 'visible' });
  assert.equal(await row('/data/run42/README.md').locator('.badge.blind').isVisible(), false);
  // suspects
  await row('/data/logs').click();
  await row('/data/logs/ingest.log').waitFor();
  assert.equal(await row('/data/logs/ingest.log').locator('.badge.suspect').isVisible(), true);
  assert.equal(await row('/data/logs/current.log').locator('.badge.suspect').isVisible(), true);
  assert.equal(await row('/data/logs/app.log').locator('.badge.suspect').count(), 0);
  // a name full of markup is text
  const weird = row(`/data/${WEIRD}`);
  assert.equal(await weird.locator('.label').textContent(), WEIRD);
  assert.equal(await page.locator('#tree img').count(), 0);
  // legend
  assert.equal(await page.locator('#legend .badge').count(), 4);
  // the details of the selected directory
  await page.locator('#detail dd', { hasText: '/data/logs' }).waitFor();
});

test('search: glob results, clicking one reveals the node', async () => {
  await page.fill('#search-input', '*.h5');
  await page.click('#search-btn');
  await page.locator('#search-count').waitFor();
  const paths = await page.locator('#search-list li button').allTextContents();
  assert.deepEqual(paths, ['/data/run42/sample_001.h5', '/data/run42/sample_002.h5']);
  // a node in a directory that is still closed
  assert.equal(await row('/data/run42/raw/frame_0017.tif').count(), 0);
  await page.fill('#search-input', 'frame_0017');
  await page.click('#search-btn');
  await page.locator('#search-list li button', { hasText: '/data/run42/raw/frame_0017.tif' }).click();
  const target = page.locator('#tree .row.selected[data-path="/data/run42/raw/frame_0017.tif"]');
  await target.waitFor();
  assert.equal(await target.isVisible(), true);
  await page.locator('#detail dd', { hasText: '/data/run42/raw/frame_0017.tif' }).waitFor();
  // back to the first search for the screenshot
  await page.fill('#search-input', '*.h5');
  await page.click('#search-btn');
  await page.locator('#search-list li').nth(1).waitFor();
});

test('blind spots, suspects and an on-demand scan', async () => {
  await page.locator('#blind li button', { hasText: '/data/run42/orphan.dat' }).waitFor();
  await page.locator('#blind li.deleted', { hasText: '/data/run42/sample_042.h5' }).waitFor();
  const suspects = await page.locator('#suspects li button').allTextContents();
  assert.deepEqual(suspects, ['/data/logs/current.log', '/data/logs/ingest.log']);
  await row('/data').hover();
  await row('/data').locator('button.scan').click();
  await page.locator('#notice', { hasText: 'Scan of /data requested' }).waitFor();
  await page.locator('#jobs li', { hasText: '/data' }).locator('.status', { hasText: 'RUNNING' }).waitFor();
  // for the screenshot: close raw/ (opened by the search reveal), select a suspect file
  await row('/data/run42/raw').click();
  await row('/data/run42/raw/frame_0001.tif').waitFor({ state: 'hidden' });
  await page.locator('#tree').evaluate((t) => { t.scrollTop = 0; });
  await row('/data/logs/ingest.log').click();
  await page.locator('#detail dd', { hasText: '/data/logs/ingest.log' }).waitFor();
  assert.equal(await page.textContent('#detail .kv div:has(dt:text-is("Flags")) dd'), 'suspect');
  await page.mouse.move(0, 0);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-fs.png') });
});

test('names that are not valid UTF-8 or hold a newline: shown escaped on one line, each clickable', async () => {
  const e9 = '/home/latin1/caf\udce9.txt';
  const e8 = '/home/latin1/caf\udce8.txt';
  await row('/home').click();
  await row('/home/latin1').waitFor();
  await row('/home/latin1').click();
  await row(e9).waitFor();
  await row(e8).waitFor();
  assert.equal(await row(e9).locator('.label').textContent(), 'caf\\xE9.txt');
  assert.equal(await row(e8).locator('.label').textContent(), 'caf\\xE8.txt');
  assert.equal(await row(e9).locator('.label .esc').count(), 1);
  // a newline in a name stays on one line, shown as a visible \n
  const nl = page.locator('#tree .row .label', { hasText: 'two\\nlines.txt' });
  await nl.waitFor();
  assert.equal(await nl.locator('.esc').textContent(), '\\n');
  assert.equal((await nl.boundingBox()).height < 40, true);
  // clicking asks Fusion for the right bytes (%E8), not for U+FFFD
  await row(e8).click();
  await page.locator('#detail dd', { hasText: '/home/latin1/caf\\xE8.txt' }).waitFor();
  await page.locator('#detail dd', { hasText: '(22 bytes)' }).waitFor();
  await row(e9).click();
  await page.locator('#detail dd', { hasText: '/home/latin1/caf\\xE9.txt' }).waitFor();
  await page.locator('#detail dd', { hasText: '(1 bytes)' }).waitFor();
  // back to the state the later tests expect
  await row('/home').click();
  await row('/home/latin1').waitFor({ state: 'hidden' });
});

test('tree rows of directories carry their total size and file count', async () => {
  const m = await api('/api/v1/views/research/metadata?path=/data', FS_KEY);
  const count = row('/data').locator('.size .count');
  await count.waitFor();
  const n = m.subtree.file_count;
  assert.equal(await count.textContent(), `${n.toLocaleString('en-US')} file${n === 1 ? '' : 's'}`);
  assert.match(await row('/data').locator('.size').getAttribute('title'), new RegExp(`^${m.subtree.total_size.toLocaleString('en-US')} bytes in `));
  // files keep their own size, without a count
  assert.equal(await row('/data/logs/app.log').locator('.size .count').count(), 0);
});

test('stats name what the reference figures measure: ages of mtimes, not delays', async () => {
  const s = await api('/api/v1/views/research/stats', FS_KEY);
  const stale = page.locator('#stats [data-k="staleness_seconds"]');
  assert.equal(await stale.locator('dt').textContent(), 'Oldest dir change');
  assert.match(await stale.locator('dd').textContent(), /^\d+(\.\d)? (s|min|h|d|y) ago$/);
  assert.match(await stale.getAttribute('title'), /not a delay of Fustor/);
  assert.ok(s.staleness_seconds > 86400, 'the feed writes directories days old');
  const lat = page.locator('#stats [data-k="latency_ms"]');
  assert.equal(await lat.locator('dt').textContent(), 'Last row age');
  assert.match(await lat.getAttribute('title'), /after a scan it is only the age of the last file scanned/);
});

test('the address carries view, selection and search; a shared link and a reload restore them', async () => {
  await row('/data/logs/ingest.log').click();
  await page.waitForFunction(() => window.location.hash.includes('sel='));
  const here = new URLSearchParams(new URL(page.url()).hash.slice(1));
  assert.equal(here.get('view'), 'research');
  assert.equal(here.get('sel'), '/data/logs/ingest.log');
  assert.equal(here.get('q'), '*.h5', 'the search shown is in the address');

  const link = new URLSearchParams({ key: FS_KEY, view: 'research', sel: '/data/run42/raw/frame_0017.tif', q: 'sample_00' });
  const tab = await context.newPage();
  tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await tab.goto(`${BASE}/ui/#${link.toString()}`);
  const check = async () => {
    await tab.locator('#tree .row.selected[data-path="/data/run42/raw/frame_0017.tif"]').waitFor();
    await tab.locator('#detail dd', { hasText: '/data/run42/raw/frame_0017.tif' }).waitFor();
    await tab.locator('#search-count', { hasText: 'match “sample_00”' }).waitFor();
    assert.equal(await tab.inputValue('#search-input'), 'sample_00');
  };
  await check();
  assert.ok(!tab.url().includes(FS_KEY), 'the key left the address bar');
  assert.equal(new URLSearchParams(new URL(tab.url()).hash.slice(1)).get('sel'), '/data/run42/raw/frame_0017.tif');
  await tab.reload();
  await check();

  // the loading indicator shows while an answer is slow, and goes away with it
  await tab.route('**/api/v1/views/research/tree**', async (r) => {
    await new Promise((res) => { setTimeout(res, 1200); });
    await r.continue();
  });
  await tab.click('#tree-reload');
  await tab.locator('#loading').waitFor({ state: 'visible' });
  assert.equal(await tab.getAttribute('body', 'aria-busy'), 'true');
  await tab.locator('#loading').waitFor({ state: 'hidden' });
  await tab.unroute('**/api/v1/views/research/tree**');
  await tab.close();
});

/** The usage page's figures against a report answer: every bar and both file lists. */
async function checkUsage(where, r) {
  const bars = async (chart, items, key) => {
    const rows = where.locator(`#usage .chart[data-chart="${chart}"] .bar-row`);
    assert.equal(await rows.count(), items.length, `${chart}: one bar per item`);
    for (const [i, it] of items.entries()) {
      const b = rows.nth(i);
      assert.equal(await b.getAttribute('data-k'), key(it), `${chart} #${i}`);
      assert.equal(await b.getAttribute('data-bytes'), String(it.bytes), `${chart} #${i} bytes`);
      assert.equal(await b.getAttribute('data-files'), String(it.files), `${chart} #${i} files`);
    }
    return rows;
  };
  const holder = (o) => (o.id == null ? 'none' : String(o.id));
  const owners = await bars('owners', r.owners, holder);
  await bars('groups', r.groups, holder);
  await bars('size', r.size_histogram, (b) => String(b.min));
  await bars('age', r.age_histogram, (b) => b.label);
  // owners by bytes: names shown, the biggest bar full length, the others in proportion
  assert.ok(r.owners.length >= 1);
  assert.equal(await owners.first().locator('.bar-label').textContent(), r.owners[0].name);
  const widths = await owners.locator('.bar').evaluateAll((els) => els.map((e) => e.style.getPropertyValue('--w')));
  assert.deepEqual(widths, r.owners.map((o) => `${((100 * o.bytes) / r.owners[0].bytes).toFixed(2)}%`));
  assert.equal(await where.locator('#usage .usage-total').getAttribute('data-bytes'), String(r.bytes));
  assert.deepEqual(await where.locator('#usage [data-list="largest"] li').evaluateAll((els) => els.map((e) => e.dataset.path)), r.largest.map((f) => f.path));
  assert.deepEqual(await where.locator('#usage [data-list="oldest"] li').evaluateAll((els) => els.map((e) => e.dataset.path)), r.oldest.map((f) => f.path));
}

test('tree rows name owner and group, with the mode as rwx in the tooltip', async () => {
  const t = await api('/api/v1/views/research/tree?path=/data/logs&max_depth=1', FS_KEY);
  const app = t.children.find((c) => c.name === 'app.log');
  assert.equal(app.owner, 'bob');
  const cell = row('/data/logs/app.log').locator('.owner');
  assert.equal(await cell.locator('.user').textContent(), 'bob');
  assert.equal(await cell.locator('.group').textContent(), ' lab');
  assert.match(await cell.getAttribute('title'), /^-rw-r----- {2}bob \(uid 1002\) {2}lab \(gid 500\)$/);
  assert.equal(await row('/data/run42').locator('.owner .user').textContent(), 'alice');
  assert.equal(await row('/data/run42').locator('.owner').getAttribute('data-mode'), 'drwxr-xr-x');
  // found by the audit with its owner: named too; the header has the column
  assert.equal(await row('/data/run42/orphan.dat').locator('.owner .user').textContent(), 'alice');
  assert.deepEqual(await page.locator('.tree-head span').allTextContents(), ['Name', 'Owner', 'Size', 'Modified', '']);
});

test('Usage page: bars and lists match the report API, follow the selection and the address', async () => {
  await page.click('#tab-usage');
  await page.locator('#usage-panel').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#detail-panel').isVisible(), false);
  assert.equal(new URLSearchParams(new URL(page.url()).hash.slice(1)).get('tab'), 'usage');
  // a directory selected: its subtree (here bob's logs only)
  await row('/data/logs').click();
  await page.locator('#usage[data-path="/data/logs"] .chart[data-chart="owners"] .bar-row').first().waitFor();
  const logs = await api('/api/v1/views/research/report?path=%2Fdata%2Flogs&top=10', FS_KEY);
  assert.deepEqual(logs.owners.map((o) => o.name), ['bob']);
  await checkUsage(page, logs);
  // a file selected: its directory
  await row('/data/run42/README.md').click();
  await page.locator('#usage[data-path="/data/run42"]').waitFor();
  await checkUsage(page, await api('/api/v1/views/research/report?path=%2Fdata%2Frun42&top=10', FS_KEY));
  // /data: the click closes it, a second one opens it again (for the screenshot)
  await row('/data').click();
  await row('/data/run42').waitFor({ state: 'hidden' });
  await row('/data').click();
  await row('/data/run42').waitFor();
  await page.locator('#usage[data-path="/data"]').waitFor();
  const data = await api('/api/v1/views/research/report?path=%2Fdata&top=10', FS_KEY);
  assert.deepEqual(data.owners.map((o) => o.name), ['alice', 'carol', 'bob']);
  await checkUsage(page, data);
  assert.equal(await page.textContent('#usage-path'), '/data');
  // the 5 s refresh of the other panels does not ask for an unchanged report again (a report may
  // scan millions of files); the Refresh button does
  const asked = [];
  const note = (req) => asked.push(new URL(req.url()).pathname);
  page.on('request', note);
  await page.waitForTimeout(6500);
  const reports = () => asked.filter((u) => u.endsWith('/report')).length;
  assert.ok(asked.some((u) => u.endsWith('/stats')), `no periodic refresh seen: ${asked.join(' ')}`);
  assert.equal(reports(), 0, `periodic refresh asked for the report: ${asked.join(' ')}`);
  await Promise.all([page.waitForResponse((res) => new URL(res.url()).pathname.endsWith('/report')), page.click('#usage-refresh')]);
  assert.equal(reports(), 1);
  page.off('request', note);
  await checkUsage(page, data);
  await page.locator('#search-results button', { hasText: 'Close' }).click();
  await page.mouse.move(0, 0);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-usage.png') });
  // a shared link opens the usage page of its selection
  const tab = await context.newPage();
  tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const link = new URLSearchParams({ key: FS_KEY, view: 'research', sel: '/data/run42/README.md', tab: 'usage' });
  await tab.goto(`${BASE}/ui/#${link.toString()}`);
  await tab.locator('#usage[data-path="/data/run42"] .chart[data-chart="size"] .bar-row').first().waitFor();
  assert.equal(await tab.getAttribute('#tab-usage', 'aria-selected'), 'true');
  await checkUsage(tab, await api('/api/v1/views/research/report?path=%2Fdata%2Frun42&top=10', FS_KEY));
  await tab.close();
  // back to the files page for the tests below
  await page.click('#tab-files');
  await page.locator('#detail-panel').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#usage-panel').isVisible(), false);
  assert.equal(new URLSearchParams(new URL(page.url()).hash.slice(1)).get('tab'), null);
});

test('a key bound to a user shows whom it stands for and sees fewer entries', async () => {
  await page.locator('#identity[data-scope="view"]', { hasText: 'whole view' }).waitFor();
  const full = await api('/api/v1/views/research/stats', FS_KEY);
  const bob = await api('/api/v1/views/research/stats', 'query-secret-bob');
  const who = await api('/api/v1/views/research/whoami', 'query-secret-bob');
  assert.deepEqual(who, { view: 'research', scope: 'user', uid: 1002, user: 'bob', groups: [{ gid: 1002, name: 'bob' }] });
  // bob cannot list alice's home (0700) nor carol's raw/ (0750, group lab)
  assert.ok(bob.total_files <= full.total_files - 25, `bob sees ${bob.total_files} of ${full.total_files}`);
  const tab = await context.newPage();
  tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await tab.goto(`${BASE}/ui/#key=query-secret-bob`);
  await tab.locator('#identity[data-scope="user"]').waitFor();
  assert.equal(await tab.textContent('#identity'), 'as uid 1002 (bob), groups 1002 (bob)');
  await tab.locator('#stats [data-k="total_files"] dd', { hasText: bob.total_files.toLocaleString('en-US') }).waitFor();
  const trow = (p) => tab.locator(`#tree .row[data-path="${p}"]`);
  await trow('/home').click();
  await trow('/home/alice').click();
  await tab.locator('#tree .row.empty').first().waitFor();
  assert.equal(await trow('/home/alice/notes.txt').count(), 0);
  await trow('/data').click();
  await trow('/data/run42').click();
  await trow('/data/run42/raw').click();
  await trow('/data/run42/README.md').waitFor();
  await tab.locator('#tree .row.empty').nth(1).waitFor();
  assert.equal(await tab.locator('#tree .row[data-path^="/data/run42/raw/"]').count(), 0);
  // bob's usage page counts what bob sees
  await tab.click('#tab-usage');
  await trow('/data').click();
  await tab.locator('#usage[data-path="/data"] .chart[data-chart="owners"] .bar-row').first().waitFor();
  const r = await api('/api/v1/views/research/report?path=%2Fdata&top=10', 'query-secret-bob');
  assert.ok(!r.owners.some((o) => o.name === 'carol'), 'carol\'s files are behind raw/');
  await checkUsage(tab, r);
  // an admin identity says so
  await tab.click('#forget-key');
  await tab.fill('#key-input', 'query-secret-ops');
  await tab.click('#key-submit');
  await tab.locator('#identity[data-scope="admin"]', { hasText: 'admin key: sees everything' }).waitFor();
  await tab.close();
});

test('forest view: members side by side, best highlighted, strategy, diff', async () => {
  const views = await api('/api/v1/views', FS_KEY);
  const forest = views.find((v) => v.view_id === 'all-servers');
  assert.ok(forest, 'all-servers is listed');
  assert.equal(forest.loaded, true, 'Fusion did not load the forest-fs view "all-servers" (see its log)');
  // another key: forget this one
  await page.click('#forget-key');
  await page.locator('#key-prompt').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('fustor.console.key')), null);
  await page.fill('#key-input', FOREST_KEY);
  await page.click('#key-submit');
  await page.locator('#members .member').nth(2).waitFor();
  assert.equal(await page.locator('#view-select').inputValue(), 'all-servers');
  assert.equal(await page.locator('#tree-panel').isVisible(), false);
  assert.deepEqual(await page.locator('#members .member h3').allTextContents(), ['nfs-a', 'nfs-b', 'nfs-c']);
  // navigate /datasets -> run42 by clicking directories
  await page.locator('#members .member[data-member="nfs-a"] button.mrow[data-name="datasets"]').click();
  await page.locator('#members .member[data-member="nfs-b"] button.mrow[data-name="run42"]').click();
  await page.locator('#crumbs .crumb.current', { hasText: 'run42' }).waitFor();
  const best = page.locator('#members .member.best');
  await best.waitFor();
  assert.equal(await best.count(), 1);
  assert.equal(await best.getAttribute('data-member'), 'nfs-a');
  assert.equal(await best.locator('.best-badge').textContent(), 'best · file count 12 files');
  assert.equal(await best.locator('[data-k="file_count"] dd').textContent(), '12');
  await page.locator('#best-summary .best-name', { hasText: 'nfs-a' }).waitFor();
  // aligned rows: nfs-b lacks four samples, nfs-c's sample_003 differs
  assert.equal(await page.locator('#members .member[data-member="nfs-b"] .mrow.missing').count(), 4);
  assert.equal(await page.locator('#members .member[data-member="nfs-c"] .mrow.differs[data-name="sample_003.h5"]').count(), 1);
  // strategy: the newest copy is on nfs-c
  await page.selectOption('#strategy', 'latest_mtime');
  await page.locator('#members .member.best[data-member="nfs-c"]').waitFor();
  assert.match(await page.textContent('#members .member.best .best-badge'), /^best · latest mtime \d{4}-/);
  await page.selectOption('#strategy', 'total_size');
  await page.locator('#members .member.best[data-member="nfs-a"]').waitFor();
  await page.selectOption('#strategy', 'file_count');
  await page.locator('#members .member.best[data-member="nfs-a"] .best-badge', { hasText: 'file count' }).waitFor();
  // the per-path diff
  const d = await api('/api/v1/views/all-servers/diff?path=/datasets/run42', FOREST_KEY);
  await page.locator('#diff [data-k="difference_count"] dd', { hasText: String(d.difference_count) }).waitFor();
  assert.ok(d.difference_count >= 5);
  await page.locator('#diff .only-in h4', { hasText: 'nfs-a' }).waitFor();
  await page.locator('#diff .mism li[data-path="/datasets/run42/sample_003.h5"]').waitFor();
  // sessions of the forest's pipes
  await page.locator('#sessions tbody tr').nth(2).waitFor();
  await page.mouse.move(0, 0);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-forest.png') });
});

test('Usage page of a forest view: the best member by bytes, another member on demand', async () => {
  const r = await api('/api/v1/views/all-servers/report?path=%2Fdatasets%2Frun42&top=10', FOREST_KEY);
  await page.click('#tab-usage');
  await page.locator('#usage-member-pick').waitFor({ state: 'visible' });
  await page.locator('#usage[data-path="/datasets/run42"] .chart[data-chart="owners"] .bar-row').first().waitFor();
  assert.equal(r.best, 'nfs-a');
  assert.equal(await page.inputValue('#usage-member'), 'nfs-a');
  await checkUsage(page, r.members['nfs-a']);
  await page.selectOption('#usage-member', 'nfs-b');
  await page.locator(`#usage .usage-total[data-bytes="${r.members['nfs-b'].bytes}"]`).waitFor();
  await checkUsage(page, r.members['nfs-b']);
  await page.click('#tab-files');
});

test('a #key= link (printed by `fustor demo`) opens the console without a prompt', async () => {
  const tab = await context.newPage();
  await tab.goto(`${BASE}/ui/#key=${encodeURIComponent(FS_KEY)}`);
  await tab.locator('#stats [data-k="total_files"] dd').waitFor();
  assert.ok(!tab.url().includes(FS_KEY), `key left in the address bar: ${tab.url()}`);
  await tab.close();
});

test('blind spots with no agent connected do not claim that every change was seen', async () => {
  const tab = await context.newPage();
  tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await tab.goto(`${BASE}/ui/#key=query-secret-quiet`);
  await tab.locator('#sessions', { hasText: 'No agent is connected' }).waitFor();
  await tab.locator('#blind-no-agent').waitFor();
  assert.match(await tab.textContent('#blind'), /None found so far/);
  assert.doesNotMatch(await tab.textContent('#blind'), /every change was seen/);
  await tab.close();
});

test('an admin key opens the Agents page: health table, filter, drill-down to pipes, audit log', async () => {
  const tab = await context.newPage();
  tab.on('pageerror', (e) => problems.push(`agents page error: ${e.message}`));
  tab.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  await tab.goto(`${BASE}/ui/#key=${encodeURIComponent(ADMIN_KEY)}`);
  const rows = tab.locator('#agents-rows tr');
  await rows.first().waitFor();
  const inv = await api('/api/v1/admin/agents', ADMIN_KEY);
  assert.equal(inv.agents.length, 4, JSON.stringify(inv));
  assert.equal(await rows.count(), inv.agents.length);
  assert.equal(await tab.locator('#main').isVisible(), false, 'views are not shown to an admin key');
  // filter by text, then by health
  await tab.fill('#agents-filter', 'nfs-b');
  await tab.locator('#agents-count', { hasText: '1 of 4' }).waitFor();
  assert.equal(await rows.count(), 1);
  assert.equal(await rows.first().getAttribute('data-agent'), 'nfs-b-client');
  await tab.fill('#agents-filter', '');
  await tab.selectOption('#agents-show', 'errors');
  await tab.locator('#agents-count', { hasText: '0 of 4' }).waitFor();
  await tab.selectOption('#agents-show', 'connected');
  await tab.locator('#agents-count', { hasText: '4 of 4' }).waitFor();
  // drill down: the agent's pipe with its health
  await tab.click('#agents-rows tr[data-agent="lab-nfs-01"]');
  const pipe = tab.locator('#agent-detail tr.pipe-row[data-pipe="research"]');
  await pipe.waitFor();
  const text = await pipe.textContent();
  assert.match(text, /leader/);
  assert.match(text, /42 \/ 8192/);
  assert.match(text, /snapshot done/);
  assert.equal(await pipe.locator('.last-error').textContent(), 'none');
  await tab.locator('#audit-log', { hasText: 'No admin action yet.' }).waitFor();
  if (SHOTS) await tab.screenshot({ path: join(SHOTS, 'console-agents.png') });
  // a query key is not an admin key: the views open as before
  await tab.click('#forget-key');
  await tab.fill('#key-input', FS_KEY);
  await tab.click('#key-submit');
  await tab.locator('#stats [data-k="total_files"] dd').waitFor();
  assert.equal(await tab.locator('#agents-main').isVisible(), false);
  await tab.close();
});

const agentDoc = (dir) => `sources:
  s:
    driver: fs
    uri: ${dir}
senders:
  f:
    driver: fusion
    uri: http://127.0.0.1:1
pipes:
  p:
    source: s
    sender: f
`;

async function adminFetch(method, path, body, ifMatch) {
  const headers = { 'X-API-Key': ADMIN_KEY };
  if (ifMatch) headers['If-Match'] = ifMatch;
  const r = await fetch(`${BASE}${path}`, { method, headers, body });
  return { status: r.status, etag: r.headers.get('etag'), body: await r.json() };
}

async function adminTab() {
  const tab = await context.newPage();
  tab.on('pageerror', (e) => problems.push(`admin page error: ${e.message}`));
  tab.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  await tab.goto(`${BASE}/ui/#key=${encodeURIComponent(ADMIN_KEY)}`);
  await tab.locator('#agents-rows tr').first().waitFor();
  return tab;
}

test('Config page: saves with If-Match, shows 422 problems at their lines and the 412 case, diffs versions', async () => {
  const first = await adminFetch('PUT', '/api/v1/admin/agent-configs/group:lab', agentDoc('/data/a'));
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const tab = await adminTab();
  await tab.click('#admin-tab-configs');
  assert.equal(await tab.locator('#agents-main').isVisible(), false);
  await tab.locator('#config-targets li[data-target="group:lab"] button').click();
  await tab.locator('#config-status', { hasText: 'version 1 by ops' }).waitFor();
  assert.equal(await tab.inputValue('#config-text'), agentDoc('/data/a'));

  // a change saved with the ETag it was read with
  await tab.fill('#config-text', agentDoc('/data/b'));
  await tab.click('#config-save');
  await tab.locator('#config-status', { hasText: 'Saved: version 2.' }).waitFor();

  // a broken document: refused, the problem marked at its line
  const broken = agentDoc('/data/b').replace('sender: f', 'sender: nope');
  const line = broken.split('\n').findIndex((l) => l.includes('sender: nope')) + 1;
  await tab.fill('#config-text', broken);
  await tab.click('#config-save');
  await tab.locator('#config-status', { hasText: 'Refused: 1 problem(s)' }).waitFor();
  await tab.locator(`#config-gutter span.bad[data-line="${line}"]`).waitFor();
  await tab.locator('#config-problems li', { hasText: `line ${line}, pipes.p.sender` }).waitFor();
  assert.equal((await adminFetch('GET', '/api/v1/admin/agent-configs/group:lab')).body.version, 2);

  // someone else writes meanwhile: this save is refused with 412, their version kept
  const cur = await adminFetch('GET', '/api/v1/admin/agent-configs/group:lab');
  const other = await adminFetch('PUT', '/api/v1/admin/agent-configs/group:lab', agentDoc('/data/c'), cur.etag);
  assert.equal(other.status, 200);
  await tab.fill('#config-text', agentDoc('/data/mine'));
  await tab.click('#config-save');
  await tab.locator('#config-status', { hasText: 'Changed by someone else' }).waitFor();
  assert.equal((await adminFetch('GET', '/api/v1/admin/agent-configs/group:lab')).body.yaml, agentDoc('/data/c'));
  await tab.click('#config-reload');
  await tab.locator('#config-status', { hasText: 'version 3' }).waitFor();
  assert.equal(await tab.inputValue('#config-text'), agentDoc('/data/c'));

  // history and a line diff between two versions
  await tab.locator('#config-version-rows tr[data-version="1"]').waitFor();
  assert.equal(await tab.locator('#config-version-rows tr').count(), 3);
  await tab.selectOption('#diff-from', '1');
  await tab.selectOption('#diff-to', '3');
  await tab.click('#diff-btn');
  await tab.locator('#config-diff span.del', { hasText: 'uri: /data/a' }).waitFor();
  await tab.locator('#config-diff span.add', { hasText: 'uri: /data/c' }).waitFor();
  assert.equal(await tab.locator('#config-diff span.add').count(), 1);
  if (SHOTS) await tab.screenshot({ path: join(SHOTS, 'console-config.png'), fullPage: true });

  // Fusion's own files: listed and shown; a broken new file is refused at its line, not written
  await tab.locator('#fusion-files li[data-file="default.yaml"] button').click();
  await tab.locator('#config-title', { hasText: 'Fusion file default.yaml' }).waitFor();
  assert.match(await tab.inputValue('#config-text'), /admin_keys:/);
  await tab.locator('#config-version-rows tr td', { hasText: 'file' }).first().waitFor();
  await tab.fill('#fusion-new-file-name', 'extra.yaml');
  await tab.press('#fusion-new-file-name', 'Enter');
  await tab.locator('#config-title', { hasText: 'Fusion file extra.yaml' }).waitFor();
  await tab.fill('#config-text', 'views:\n  extra:\n    driver: fs\n    colour: blue\n');
  await tab.click('#config-save');
  await tab.locator('#config-status', { hasText: 'Refused' }).waitFor();
  await tab.locator('#config-gutter span.bad[data-line="4"]').waitFor();
  const set = await adminFetch('GET', '/api/v1/admin/fusion-config');
  assert.deepEqual(set.body.files.map((f) => f.name), ['default.yaml']);
  await tab.close();
});

test('Audit page: every admin action, filtered by who, action and target', async () => {
  const tab = await adminTab();
  await tab.click('#admin-tab-audit');
  const rows = tab.locator('#audit-rows tr');
  await rows.first().waitFor();
  const all = await adminFetch('GET', '/api/v1/admin/audit?limit=100');
  assert.equal(await rows.count(), all.body.entries.length);
  await tab.fill('#audit-action', 'agent_config');
  await tab.click('#audit-apply');
  await tab.locator('#audit-count', { hasText: '5 entries' }).waitFor();
  const results = await tab.locator('#audit-rows tr').evaluateAll((trs) => trs.map((t) => t.dataset.result));
  assert.deepEqual(results, ['precondition_failed', 'ok', 'invalid', 'ok', 'ok']);
  await tab.fill('#audit-action', '');
  await tab.fill('#audit-target', 'fusion-config/');
  await tab.click('#audit-apply');
  await tab.locator('#audit-count', { hasText: '1 entry' }).waitFor();
  assert.equal(await tab.locator('#audit-rows tr td', { hasText: 'fusion_config.put' }).count(), 1);
  await tab.fill('#audit-target', '');
  await tab.fill('#audit-actor', 'nobody');
  await tab.click('#audit-apply');
  await tab.locator('#audit-count', { hasText: '0 entries' }).waitFor();
  await tab.fill('#audit-actor', 'ops');
  await tab.fill('#audit-since', '2999-01-01T00:00:00');
  await tab.click('#audit-apply');
  await tab.locator('#audit-count', { hasText: '0 entries' }).waitFor();
  await tab.fill('#audit-since', '');
  await tab.click('#audit-apply');
  await tab.locator('#audit-count', { hasText: `${all.body.entries.length} entries` }).waitFor();
  if (SHOTS) await tab.screenshot({ path: join(SHOTS, 'console-audit.png'), fullPage: true });
  await tab.close();
});

test('the Agents page shows the configuration an agent runs and requests remote actions', async () => {
  const tab = await context.newPage();
  tab.on('pageerror', (e) => problems.push(`actions page error: ${e.message}`));
  tab.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  await tab.goto(`${BASE}/ui/#key=${encodeURIComponent(ADMIN_KEY)}`);
  await tab.click('#agents-rows tr[data-agent="lab-nfs-01"]');
  // the fake agent reports no registry status: it is not steered
  await tab.locator('#agent-detail .agent-config', { hasText: 'not steered by the registry' }).waitFor();
  await tab.locator('#action-list', { hasText: 'No action yet.' }).waitFor();
  assert.deepEqual(await tab.locator('#agent-actions button').evaluateAll((bs) => bs.map((b) => b.dataset.action)),
    ['reload', 'rescan', 'restart_pipe', 'stop_pipe', 'start_pipe']);
  // a re-scan of a path full of markup: recorded as asked, shown as text
  await tab.selectOption('#action-pipe', 'research');
  await tab.fill('#action-path', '/<b>x</b>');
  await tab.click('#agent-actions button[data-action="rescan"]');
  await tab.locator('#action-message', { hasText: 'rescan #' }).waitFor();
  const rows = tab.locator('#action-list tr.action-row');
  await rows.first().waitFor();
  const first = await rows.first().textContent();
  assert.match(first, /rescan/);
  assert.match(first, /research/);
  assert.ok(first.includes('/<b>x</b>'), first);
  assert.match(first, /ops/);
  assert.match(first, /pending/, 'the fake agent heartbeats no more: the action waits');
  assert.equal(await tab.locator('#action-list b').count(), 0, 'server text is never markup');
  await tab.click('#agent-actions button[data-action="stop_pipe"]');
  await tab.locator('#action-list tr.action-row[data-outcome="pending"] >> nth=1').waitFor();
  const list = await api('/api/v1/admin/actions?agent=lab-nfs-01', ADMIN_KEY);
  assert.deepEqual(list.actions.map((a) => [a.action, a.pipe, a.requested_by]),
    [['stop_pipe', 'research', 'ops'], ['rescan', 'research', 'ops']]);
  // a half-filled form survives the page's refresh
  await tab.fill('#action-path', '/keep');
  await tab.waitForTimeout(5600);
  assert.equal(await tab.inputValue('#action-path'), '/keep');
  assert.equal(await tab.inputValue('#action-pipe'), 'research');
  if (SHOTS) await tab.screenshot({ path: join(SHOTS, 'console-agent-actions.png') });
  await tab.close();
});

test('no dialogs, script errors, CSP violations or failed requests', () => {
  assert.deepEqual(problems, []);
});
