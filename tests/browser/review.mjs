// Drives the admin UI in headless Chromium like a reviewer would: log in, see
// the dashboard's charts, upload two generated invoices, wait for them, then
// review by keyboard: the first field has the focus and its box is lit on the
// page image, Enter moves on, a value is filled by clicking a word on the page
// image, a line item is corrected (the sums checked as it is typed), Alt+A
// saves, approves and opens the next document, Alt+R rejects that one. The
// main pages are checked with axe-core (no serious or critical violation), the
// console stays free of errors (the Content-Security-Policy included), and
// screenshots are saved.
// Usage: node review.mjs BASE_URL USER PASSWORD INVOICE_A.pdf INVOICE_B.pdf OUT_DIR
// Prints TAP.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, user, password, invoiceA, invoiceB, out] = process.argv.slice(2);
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
let n = 0, failed = 0;
function ok(cond, name, extra) {
  n++;
  if (cond) console.log(`ok ${n} - ${name}`);
  else { failed++; console.log(`not ok ${n} - ${name}${extra ? `\n# ${String(extra).replace(/\n/g, '\n# ')}` : ''}`); }
}

// axe-core runs through the DevTools protocol (page.evaluate), which the page's
// Content-Security-Policy does not govern; the page itself keeps its policy.
async function axe(page, name) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length,
      target: v.nodes[0] && v.nodes[0].target.join(' ') }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  ok(bad.length === 0, `/browser/axe/${name}`, JSON.stringify(bad));
}

// A request outside the page. Node may reuse a kept-alive connection the server has just
// closed (idle past web.timeout_s on a slow machine), which fails at once: tried again then.
async function get(context, url) {
  for (let i = 0; ; i++) {
    try {
      return await context.request.get(url);
    } catch (e) {
      if (i >= 3) throw e;
    }
  }
}

async function focusedName(page) {
  return page.evaluate(() => document.activeElement && document.activeElement.getAttribute('name'));
}

const profile = mkdtempSync(join(tmpdir(), 'quire-chromium-'));
// A fresh profile directory each run (playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1440, height: 1000 },
});
// Playwright's own limits (30 s per action) are fixed times; a loaded machine may need longer.
// These only stop a hang.
const limit = 1000 * Number(process.env.QUIRE_TEST_WAIT_S || 300);
context.setDefaultTimeout(limit);
context.setDefaultNavigationTimeout(limit);
const errors = [];
try {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));

  await page.goto(`${base}/`);
  ok(page.url().startsWith(`${base}/login`), '/browser/redirected-to-login', page.url());
  await axe(page, 'login');
  await page.fill('input[name=name]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  ok(await page.isVisible('h1:has-text("Dashboard")'), '/browser/logged-in', (await page.content()).slice(0, 1500));

  await page.goto(`${base}/upload`);
  await axe(page, 'upload');
  await page.setInputFiles('input[type=file]', [invoiceA, invoiceB]);
  await Promise.all([page.waitForNavigation(), page.click('main button[type=submit]')]);
  const links = page.locator('main table a[href^="/documents/"]');
  ok(await links.count() === 2, '/browser/uploaded');
  const hrefs = [await links.nth(0).getAttribute('href'), await links.nth(1).getAttribute('href')].sort();

  // The worker picks the jobs up at once; a review page answers 409 until its document is processed.
  // Polled outside the page (so the waiting leaves no failed loads in the console), as long as it takes.
  let ready = false;
  for (let i = 0; i < 1200 && !ready; i++) {
    ready = (await get(context, `${base}${hrefs[0]}`)).status() === 200 &&
      (await get(context, `${base}${hrefs[1]}`)).status() === 200;
    if (!ready) await page.waitForTimeout(500);
  }
  ok(ready, '/browser/processed');
  const early = errors.filter((e) => !e.includes('409'));
  errors.length = 0;
  errors.push(...early);

  // --- the dashboard's charts, drawn by the server ---
  await page.goto(`${base}/`);
  const charts = await page.evaluate(() => Array.from(document.querySelectorAll('.chart svg')).map((s) => ({
    name: s.getAttribute('aria-label'), width: s.getBoundingClientRect().width,
    marks: s.querySelectorAll('rect, polyline, circle').length })));
  ok(charts.length === 4 && charts.every((c) => c.width > 200 && c.name), '/browser/dashboard-charts',
    JSON.stringify(charts));
  ok(charts.length === 4 && charts[0].marks >= 1 && charts[2].marks >= 1, '/browser/dashboard-charts-have-data',
    JSON.stringify(charts));
  await page.screenshot({ path: join(out, 'dashboard.png'), fullPage: true });
  await axe(page, 'dashboard');

  // --- review by keyboard ---
  await page.goto(`${base}${hrefs[0]}`);
  await page.waitForFunction(() => {
    const i = document.querySelector('.page svg image');
    return i && i.getBBox().width > 0;
  });
  const left = await page.textContent('p.left');
  ok(/^1 other document left to review/.test(left.trim()), '/browser/left-to-review', left);
  const first = await focusedName(page);
  ok(first === 'field.supplier_name', '/browser/keys/first-field-focused', first);
  ok(await page.locator('rect.box.lit').count() === 1, '/browser/focus-lights-box');
  await page.keyboard.press('Enter');
  ok(await focusedName(page) === 'field.supplier_address', '/browser/keys/enter-next-field', await focusedName(page));
  await page.keyboard.press('Alt+ArrowDown');
  ok(await focusedName(page) === 'field.supplier_vat_id', '/browser/keys/alt-down-next-field', await focusedName(page));

  // A wrong invoice number, put right by clicking the number on the page image.
  const number = page.locator('input[name="field.invoice_number"]');
  ok(await number.inputValue() === 'INV-BROWSER-7', '/browser/field-extracted', await number.inputValue());
  await number.focus();
  const litId = await page.evaluate(() => document.querySelector('rect.box.lit') && document.querySelector('rect.box.lit').id);
  ok(litId === await number.getAttribute('data-src'), '/browser/field-marks-its-box', litId);
  await number.fill('WRONG-NUMBER');
  const word = page.locator('rect.word[data-w="INV-BROWSER-7"]').first();
  ok(await word.count() === 1, '/browser/word-on-page');
  await word.click({ force: true });
  ok(await number.inputValue() === 'INV-BROWSER-7', '/browser/word-fills-field', await number.inputValue());
  ok(await focusedName(page) === 'field.invoice_number', '/browser/focus-stays-on-field');

  // A line item: a wrong amount shows the failed checks beside the fields, as it is typed.
  const amount = page.locator('input[name="table.line_items.0.amount"]');
  const rightAmount = await amount.inputValue();
  await amount.fill('1.00');
  const sumCheck = page.locator('tr[data-field="net_amount"] .check[data-check="line_items_sum"]');
  ok(await sumCheck.isVisible() && /line items sum to/.test(await sumCheck.textContent()), '/browser/sum-checked-as-typed',
    await sumCheck.textContent());
  await amount.fill(rightAmount);
  ok(!(await sumCheck.isVisible()), '/browser/sum-check-clears');
  await page.fill('input[name="table.line_items.0.description"]', 'Archive boxes, corrected in review');
  await page.screenshot({ path: join(out, 'review.png'), fullPage: false });
  await axe(page, 'review');

  // Alt+A: saved, approved, and on to the next document.
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Alt+a')]);
  ok(page.url().startsWith(`${base}${hrefs[1]}?`), '/browser/keys/accept-goes-to-next', page.url());
  ok(await page.isVisible('text=approved (version 2)'), '/browser/accepted-with-correction');
  const a = await (await get(context, `${base}${hrefs[0]}`)).text();
  ok(a.includes('value="Archive boxes, corrected in review"') && a.includes('badge approved'),
    '/browser/line-item-corrected');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Alt+r')]);
  ok(await page.isVisible('text=rejected') && await page.isVisible('text=No other document needs review'),
    '/browser/keys/reject-last', (await page.textContent('main')).slice(0, 300));

  await page.goto(`${base}/documents`);
  await axe(page, 'documents');
  await page.goto(`${base}/quality`);
  const quality = await page.textContent('table.quality');
  ok(/invoice_number|line_items/.test(quality), '/browser/quality-page', quality.slice(0, 300));
  await axe(page, 'quality');
  ok(errors.length === 0, '/browser/no-console-errors', errors.join(' | '));
} catch (e) {
  ok(false, '/browser/unexpected-error', String(e).split('\n').slice(0, 3).join(' '));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
