// Drives the admin UI in headless Chromium like a reviewer would: log in,
// upload a generated invoice, wait for it to be processed, open the review
// page, highlight a field's source, correct the field, approve the document,
// and save screenshots of the dashboard and the review page.
// Usage: node review.mjs BASE_URL USER PASSWORD INVOICE.pdf OUT_DIR
// Prints TAP.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, user, password, invoice, out] = process.argv.slice(2);
let n = 0, failed = 0;
function ok(cond, name, extra) {
  n++;
  if (cond) console.log(`ok ${n} - ${name}`);
  else { failed++; console.log(`not ok ${n} - ${name}${extra ? `\n# ${extra}` : ''}`); }
}

const profile = mkdtempSync(join(tmpdir(), 'quire-chromium-'));
// A fresh profile directory each run (playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1440, height: 1000 },
});
const errors = [];
try {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));

  await page.goto(`${base}/`);
  ok(page.url().startsWith(`${base}/login`), '/browser/redirected-to-login', page.url());
  await page.fill('input[name=name]', user);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  ok(await page.isVisible('h1:has-text("Dashboard")'), '/browser/logged-in', (await page.content()).slice(0, 1500));

  await page.goto(`${base}/upload`);
  await page.setInputFiles('input[type=file]', invoice);
  await Promise.all([page.waitForNavigation(), page.click('main button[type=submit]')]);
  const link = page.locator('main table a[href^="/documents/"]').first();
  ok(await link.count() === 1, '/browser/uploaded');
  const href = await link.getAttribute('href');

  // The worker picks the job up at once; the review page answers 409 until the document is processed.
  // Polled outside the page, so the waiting leaves no failed loads in the console.
  let ready = false;
  for (let i = 0; i < 120 && !ready; i++) {
    ready = (await context.request.get(`${base}${href}`)).status() === 200;
    if (!ready) await page.waitForTimeout(500);
  }
  ok(ready, '/browser/processed');
  // Landing on the document before it is processed answers 409 ("nothing to review yet"), which the
  // browser logs as a failed load; only what happens once it is ready counts as an error.
  const early = errors.filter((e) => !e.includes('409'));
  errors.length = 0;
  errors.push(...early);
  await page.goto(`${base}${href}`);
  const img = page.locator('.page svg image').first();
  await page.waitForFunction(() => {
    const i = document.querySelector('.page svg image');
    return i && i.getBBox().width > 0;
  });
  const loaded = await page.evaluate(async (src) => {
    const r = await fetch(src);
    return r.ok && r.headers.get('content-type') === 'image/png' && (await r.arrayBuffer()).byteLength > 1000;
  }, await img.getAttribute('href'));
  ok(loaded, '/browser/page-image-rendered');

  const row = page.locator('tr', { has: page.locator('input[name="field.invoice_number"]') });
  ok(await page.inputValue('input[name="field.invoice_number"]') === 'INV-BROWSER-7', '/browser/field-extracted');
  await row.locator('a.src').click();
  const lit = await page.locator('rect.box.lit').count();
  ok(lit === 1, '/browser/source-highlighted');
  await page.screenshot({ path: join(out, 'review.png'), fullPage: false });

  await page.fill('input[name="field.invoice_number"]', 'INV-BROWSER-7-CORRECTED');
  await Promise.all([page.waitForNavigation(), page.click('text=Save corrections')]);
  ok(await page.isVisible('text=Saved as version 2'), '/browser/corrected');
  ok(await page.inputValue('input[name="field.invoice_number"]') === 'INV-BROWSER-7-CORRECTED', '/browser/correction-shown');
  ok(await page.locator('td', { hasText: 'invoice_number' }).count() >= 1, '/browser/version-history');

  page.on('dialog', (d) => d.accept());
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Approve")')]);
  ok(await page.isVisible('text=Document approved'), '/browser/approved');
  ok(await page.locator('.badge.approved').count() >= 1, '/browser/approved-badge');

  await page.goto(`${base}/`);
  await page.screenshot({ path: join(out, 'dashboard.png'), fullPage: true });
  ok(await page.locator('.card').count() >= 5, '/browser/dashboard');
  ok(errors.length === 0, '/browser/no-console-errors', errors.join(' | '));
} catch (e) {
  ok(false, '/browser/unexpected-error', String(e).split('\n')[0]);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
