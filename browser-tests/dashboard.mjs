// The operator console in a real browser: a supervisor signs in to the desk, opens the
// dashboard filled by `billpay demo traffic`, sees the SVG charts drawn (each with its title
// and bars or lines), a bad filter refused with a clear message, and the reports page with the
// reconciliation report, the review queue with a payment held, then the settings page: a bad value refused next to its field, a
// good one saved as a version with what changed. axe-core runs on each page; screenshots are
// saved.
//
//   node browser-tests/dashboard.mjs BASE_URL STAFF_EMAIL STAFF_PASSWORD TOTP_CODE
import { launch, newPage, check, expect, mainText, fail } from './lib.mjs';

const [base, email, password, code] = process.argv.slice(2);
if (!code) fail('usage: dashboard.mjs BASE_URL STAFF_EMAIL STAFF_PASSWORD TOTP_CODE');

const browser = await launch();
try {
  const page = await newPage(browser);
  await page.goto(base + '/desk');
  await page.waitForURL('**/desk/signin');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL('**/desk/signin/code');
  await page.fill('#code', code);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/desk$/);

  await page.getByRole('link', { name: 'Dashboard' }).click();
  await page.waitForURL('**/desk/dashboard');
  await page.waitForSelector('svg.chart');
  const charts = await page.$$eval('svg.chart', (svgs) => svgs.map((s) => {
    const box = s.getBoundingClientRect();
    return {
      id: s.id,
      title: s.querySelector('title')?.textContent || '',
      marks: s.querySelectorAll('rect, polyline, circle').length,
      width: box.width,
      height: box.height,
    };
  }));
  expect(charts.length >= 8, `expected the dashboard's charts, got ${charts.length}`);
  for (const c of charts) {
    expect(c.title.length > 0, `chart ${c.id} has no title`);
    expect(c.width > 300 && c.height > 100, `chart ${c.id} is not drawn (${c.width}x${c.height})`);
  }
  const byChannel = charts.find((c) => c.id === 'payments-by-channel');
  expect(byChannel && byChannel.marks > 10, `the payments chart has no bars: ${JSON.stringify(byChannel)}`);
  const text = await mainText(page);
  for (const heading of ['Payments posted', 'Phone line', 'Live chat', 'Accounts now', 'AutoPay enrolled']) {
    expect(text.includes(heading), `the dashboard lacks "${heading}"`);
  }
  await check(page, '50-desk-dashboard');

  // One channel, then a bad date: refused with what to type.
  await page.selectOption('#channel', 'phone');
  await page.click('#filters button[type=submit]');
  await page.waitForURL('**/desk/dashboard?*channel=phone*');
  await page.waitForSelector('svg.chart');
  await check(page, '51-desk-dashboard-phone');
  await page.fill('#from', '12/01/2026');
  await page.click('#filters button[type=submit]');
  await page.waitForSelector('#filter-error');
  const error = await page.textContent('#filter-error');
  expect(error.includes('from must be a day as YYYY-MM-DD'), `unclear filter error: ${error}`);
  await check(page, '52-desk-dashboard-bad-filter');

  await page.getByRole('link', { name: 'Reports' }).click();
  await page.waitForURL('**/desk/reports');
  expect((await mainText(page)).includes('Payment posting file for'), 'no posting file section');
  await check(page, '53-desk-reports');
  await page.getByRole('link', { name: 'Read the reconciliation report' }).click();
  await page.waitForSelector('#verdict');
  await check(page, '54-desk-reconciliation');

  // The review queue: the payment held for review, with its approve and reject forms.
  await page.getByRole('link', { name: 'Review queue' }).click();
  await page.waitForURL('**/desk/reviews');
  const held = await page.$$eval('section[id^="review-"]', (s) => s.length);
  expect(held >= 1, `expected a payment held for review, got ${held}`);
  await check(page, '58-desk-reviews');

  // Settings: a bad value is refused by name, nothing saved; a good one is in force at once.
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.waitForURL('**/desk/settings');
  await check(page, '55-desk-settings');
  const save = 'form[action="/desk/settings"] button[type=submit]';
  await page.fill('#agent_hours_start', '25');
  await page.fill('#reason', 'Representatives start earlier');
  await page.click(save);
  await page.waitForSelector('#settings-errors');
  const problems = await page.textContent('#settings-errors');
  expect(problems.includes('Phone representatives from (hour): a whole number from 0 to 24.'),
    `unclear settings error: ${problems}`);
  expect(await page.getAttribute('#agent_hours_start', 'aria-invalid') === 'true', 'the field is not marked');
  await check(page, '56-desk-settings-refused');
  await page.fill('#agent_hours_start', '7');
  await page.click(save);
  await page.waitForURL('**/desk/settings?saved=1*');
  const saved = await mainText(page);
  expect(saved.includes('Saved as version 1'), 'no saved message');
  expect(saved.includes('Phone representatives from (hour): 8 → 7'), `no change in the history: ${saved}`);
  await check(page, '57-desk-settings-saved');
  console.log('dashboard flows passed');
} finally {
  await browser.close();
}
