// Drives the console in headless Chromium with playwright-core (test_console.py installs it):
// signs in as each role, reads what each view shows, tests and changes a rule, tries what a
// role may not do, and watches for any script the audit data could have smuggled in.
// argv: CONSOLE_URL ARTIFACT_DIR; prints one JSON object with what it saw.
const { chromium } = require('playwright-core');

const [base, artifacts] = process.argv.slice(2);
const password = 'console-test-pw';

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const out = { dialogs: [], errors: [] };
  async function signIn(user) {
    // The console's certificate is minted from the gateway's CA, which this browser trusts as an
    // enterprise would deploy it (the NSS database in $HOME that test_console.py made).
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    page.on('dialog', async (d) => { out.dialogs.push(d.message()); await d.dismiss(); });
    page.on('pageerror', (e) => out.errors.push(String(e)));
    await page.goto(base + '/login');
    await page.fill('input[name=user]', user);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForNavigation(), page.click('#login button')]);
    return { context, page };
  }

  // viewer: every view, the numbers, the charts; and a change it may not make.
  {
    const { context, page } = await signIn('vera');
    await page.goto(base + '/?range=day');
    await page.waitForSelector('body[data-charts=drawn]', { timeout: 15000 });
    out.overview = {
      requests: await page.textContent('#requests'),
      blocked: await page.textContent('#blocked'),
      ruleset: await page.textContent('#ruleset'),
      ca_days: await page.textContent('#ca-days'),
      top_blocked_hosts: await page.$$eval('#top-blocked-hosts tbody tr', (rows) =>
        rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent])),
    };
    await page.screenshot({ path: artifacts + '/console-overview.png', fullPage: true });
    // "Who was blocked from what yesterday, and why": one search.
    await page.goto(base + '/audit?since=1d&action=block');
    out.blocked_rows = await page.$$eval('#records tbody tr', (rows) =>
      rows.map((r) => ({ id: r.cells[0].textContent, user: r.cells[2].textContent, host: r.cells[4].textContent,
                         rule: r.cells[8].textContent, reason: r.cells[9].textContent, url: r.cells[10].textContent })));
    out.export_csv = await page.evaluate(async () => (await fetch('/audit/export?format=csv&since=1d&action=block')).text());
    await page.screenshot({ path: artifacts + '/console-audit.png', fullPage: true });
    await page.goto(base + '/audit/record?id=' + out.blocked_rows[0].id);
    out.record_reason = await page.$$eval('#record tr', (rows) =>
      rows.filter((r) => r.cells[0].textContent === 'reason').map((r) => r.cells[1].textContent)[0]);
    // Everything the attacker controls, shown as text: the user agent of the XSS requests.
    await page.goto(base + '/audit?host=xss.test');
    out.xss_cells = await page.$$eval('#records tbody tr td:last-child', (cells) => cells.map((c) => c.textContent));
    const xssId = await page.$$eval('#records tbody tr td:first-child', (cells) => cells.map((c) => c.textContent)[0]);
    await page.goto(base + '/audit/record?id=' + xssId);
    out.xss_user_agent = await page.$$eval('#record tr', (rows) =>
      rows.filter((r) => r.cells[0].textContent === 'user_agent').map((r) => r.cells[1].textContent)[0]);
    out.injected_elements = await page.$$eval('img[src=x], script:not([src])', (els) => els.length);
    await page.screenshot({ path: artifacts + '/console-xss-record.png', fullPage: true });
    await page.goto(base + '/rules');
    out.rules_xss_text = await page.textContent('#categories');
    out.policies_text = await page.textContent('#policies');
    out.injected_on_rules = await page.$$eval('img[src=x], script:not([src])', (els) => els.length);
    await page.goto(base + '/audit/verify');
    out.verify = await page.textContent('#verified');
    await page.goto(base + '/ca');
    out.ca_root = await page.textContent('#root');
    await page.screenshot({ path: artifacts + '/console-ca.png', fullPage: true });
    // A viewer's change, with its own valid CSRF token: refused by role.
    const csrf = await page.getAttribute('nav input[name=csrf]', 'value');
    out.viewer_change = await page.evaluate(async (token) => {
      const r = await fetch('/rules/change', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'csrf=' + token + '&op=add-host&pattern=viewer.test&category=malware' });
      return r.status;
    }, csrf);
    // A change without the token (what another site's form would send): refused.
    out.no_csrf_change = await page.evaluate(async () => {
      const r = await fetch('/rules/change', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'op=add-host&pattern=forged.test&category=malware' });
      return r.status;
    });
    await context.close();
  }
  // analyst: a rule test.
  {
    const { context, page } = await signIn('ana');
    await page.goto(base + '/rules');
    await page.fill('#test input[name=url]', 'https://www.bad.test/download');
    await Promise.all([page.waitForNavigation(), page.click('#test button')]);
    out.analyst_verdict = await page.textContent('#verdict');
    out.analyst_has_change_form = (await page.$('#add-host')) !== null;
    await context.close();
  }
  // admin: a change through the form.
  {
    const { context, page } = await signIn('adam');
    await page.goto(base + '/rules');
    await page.fill('#add-host input[name=pattern]', 'newly-blocked.test');
    await page.fill('#add-host input[name=category]', 'malware');
    await Promise.all([page.waitForNavigation(), page.click('#add-host button')]);
    out.admin_message = await page.textContent('#message');
    await page.screenshot({ path: artifacts + '/console-rules.png', fullPage: true });
    await context.close();
  }
  // A wrong password.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(base + '/login');
    await page.fill('input[name=user]', 'adam');
    await page.fill('input[name=password]', 'not-the-password');
    await Promise.all([page.waitForNavigation(), page.click('#login button')]);
    out.wrong_password = await page.textContent('#message');
    await context.close();
  }
  await browser.close();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
