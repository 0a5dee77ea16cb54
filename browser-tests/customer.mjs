// A registered customer in a real browser: create an online account (a weak password is
// refused first), read the sign-in code in the demo mailbox, sign in, see the account page,
// pay now, find the payment in the history and open its receipt, sign out. axe-core on every
// page.
//
//   node browser-tests/customer.mjs BASE_URL ACCOUNT_NUMBER ZIP EMAIL
import { createHmac } from 'node:crypto';
import { launch, newPage, check, expect, mainText, assertNoFullNumbers, fail } from './lib.mjs';

// What an authenticator app shows for a key (RFC 6238: HMAC-SHA1, 30 s, 6 digits).
function appCode(key, now = Date.now()) {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const bytes = [];
  for (const c of key.replace(/[\s=]/g, '').toUpperCase()) {
    value = (value << 5) | ALPHABET.indexOf(c);
    bits += 5;
    if (bits >= 8) { bytes.push((value >>> (bits - 8)) & 255); bits -= 8; }
  }
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 30000)));
  const h = createHmac('sha1', Buffer.from(bytes)).update(counter).digest();
  const o = h[19] & 15;
  const n = (((h[o] & 127) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]) % 1000000;
  return String(n).padStart(6, '0');
}

const [base, account, zip, email] = process.argv.slice(2);
if (!base || !account || !zip || !email) fail('usage: customer.mjs BASE_URL ACCOUNT_NUMBER ZIP EMAIL');
const PASSWORD = 'otter lamp river 42';
const CARD = '4242424242424242';

const browser = await launch();
try {
  const page = await newPage(browser);
  await page.goto(base + '/');
  await page.getByRole('link', { name: 'Create an online account' }).click();
  await page.waitForURL('**/enrol');
  await check(page, '20-enrol');

  await page.fill('#account_number', account);
  await page.fill('#postal_code', zip);
  await page.fill('#email', email);
  await page.fill('#password', 'Password1234!');
  await page.fill('#password_confirm', 'Password1234!');
  await page.click('button:has-text("Create account")');
  expect((await mainText(page)).includes('lists attackers try first'), 'enrol: a common password was accepted');
  expect(await page.inputValue('#password') === '', 'enrol: the password was sent back to the browser');
  await check(page, '21-enrol-weak-password');

  await page.fill('#password', PASSWORD);
  await page.fill('#password_confirm', PASSWORD);
  await page.click('button:has-text("Create account")');
  await page.waitForURL('**/signin/code');
  await check(page, '22-code');

  // The code arrives by email: read it in the demo mailbox, in another tab.
  const mailbox = await page.context().newPage();
  await mailbox.goto(base + '/demo/mailbox');
  const subject = await mailbox.textContent('a:has-text("your sign-in code is")');
  const code = (subject.match(/(\d{6})/) || [])[1];
  expect(code, `no code in the mailbox: ${subject}`);
  expect((await mailbox.textContent('main')).includes('now has an online sign-in'), 'no enrolment notice email');
  await mailbox.close();

  await page.fill('#code', code === '000000' ? '111111' : '000000');
  await page.click('button:has-text("Sign in")');
  expect((await mainText(page)).includes('not right'), 'a wrong code was accepted');
  await check(page, '23-code-wrong');
  await page.fill('#code', code);
  await page.click('button:has-text("Sign in")');
  await page.waitForURL('**/account');
  const dash = await mainText(page);
  expect(dash.includes(`Signed in as ${email}`), `account page: ${dash}`);
  expect(dash.includes('$84.10') && dash.includes('No payments yet'), `account page: balance or history: ${dash}`);
  await check(page, '24-account');

  // Pay now: no account number to type.
  await page.getByRole('link', { name: 'Pay now' }).click();
  await page.waitForURL('**/pay/amount');
  await page.check('#amount_full');
  await page.click('main button[type=submit]');
  await page.waitForURL('**/pay/method');
  await page.check('#method_card');
  await page.fill('#card_number', CARD);
  await page.fill('#exp_month', '12');
  await page.fill('#exp_year', '34');
  await page.fill('#cvc', '123');
  await page.fill('#postal_code', zip);
  await page.click('main button[type=submit]');
  await page.waitForURL('**/pay/review');
  await page.click('button:has-text("Pay $84.10")');
  await page.waitForURL('**/pay/done/**');
  const confirmation = ((await mainText(page)).match(/\d{3}-\d{3}-\d{4}/) || [])[0];
  expect(confirmation, 'no confirmation number');

  await page.getByRole('link', { name: 'My account' }).click();
  await page.waitForURL('**/account');
  const after = await mainText(page);
  expect(after.includes(confirmation) && after.includes('Visa ending in 4242') && after.includes('Paid'), `history: ${after}`);
  await assertNoFullNumbers(page, [CARD], 'account history');
  await check(page, '25-account-history');
  await page.getByRole('link', { name: `${confirmation} receipt` }).click();
  await page.waitForURL('**/receipts/**');
  expect((await mainText(page)).includes(confirmation), 'receipt from the history');
  await check(page, '26-history-receipt');

  // Save a card, then turn on AutoPay with it: terms shown, refused until accepted.
  await page.goto(base + '/account');
  await page.getByRole('link', { name: 'Saved payment methods' }).click();
  await page.waitForURL('**/account/methods');
  await check(page, '28-methods-empty');
  await page.fill('#card_number', '5555555555554444');
  await page.fill('#exp_month', '11');
  await page.fill('#exp_year', '2031');
  await page.fill('#postal_code', zip);
  await page.check('#make_default');
  await page.click('main button:has-text("Save card")');
  const saved = await mainText(page);
  expect(saved.includes('Saved Mastercard ending in 4444') && saved.includes('(default)'), `methods: ${saved}`);
  await assertNoFullNumbers(page, ['5555555555554444'], 'methods');
  await check(page, '29-methods-saved');
  // A bank account too: a wrong routing number is named, then it is saved, last four only.
  await page.fill('#holder_name', 'Pat Payer');
  await page.fill('#routing_number', '123456789');
  await page.fill('#bank_account_number', '000123456789');
  await page.click('main button:has-text("Save bank account")');
  expect((await mainText(page)).includes('not a valid routing number'), 'a bad routing number was saved');
  await check(page, '29a-methods-bank-error');
  await page.fill('#routing_number', '110000000');
  await page.fill('#bank_account_number', '000123456789');
  await page.click('main button:has-text("Save bank account")');
  expect((await mainText(page)).includes('ending in 6789'), 'the bank account was not saved');
  await assertNoFullNumbers(page, ['000123456789'], 'methods with a bank account');
  await check(page, '29b-methods-bank-saved');

  await page.goto(base + '/account/autopay');
  await check(page, '30-autopay');
  await page.check('#timing_before');
  await page.fill('#days_before', '3');
  await page.fill('#maximum', '200.00');
  await page.click('main button:has-text("Review the terms")');
  const terms = await mainText(page);
  expect(terms.includes('You authorize') && terms.includes('card ending in 4444') && terms.includes('3 days before each due date') && terms.includes('$200.00'), `terms: ${terms}`);
  await check(page, '31-autopay-terms');
  await page.click('main button:has-text("Turn on AutoPay")');
  expect((await mainText(page)).includes('tick the box to accept'), 'AutoPay turned on without accepting the terms');
  await check(page, '32-autopay-terms-not-accepted');
  await page.check('#accept');
  await page.click('main button:has-text("Turn on AutoPay")');
  await page.waitForURL('**/account/autopay');
  expect((await mainText(page)).includes('AutoPay is on'), 'AutoPay not on');
  await check(page, '33-autopay-on');
  await page.goto(base + '/account');
  expect((await mainText(page)).includes('On: pays 3 days before each due date'), 'account page: AutoPay state');
  await page.goto(base + '/demo/mailbox');
  expect((await mainText(page)).includes('AutoPay is on'), 'no AutoPay confirmation email');

  // Schedule a payment: past the due date is refused, a date before it is taken; cancel it.
  const day = (n) => new Date(Date.now() + n * 86400000).toISOString().slice(0, 10);
  await page.goto(base + '/account');
  await page.getByRole('link', { name: 'Scheduled payments' }).click();
  await page.waitForURL('**/account/scheduled');
  await check(page, '34-scheduled-empty');
  await page.fill('#amount', '20.00');
  await page.fill('#date', day(40));
  await page.click('main button:has-text("Schedule payment")');
  expect((await mainText(page)).includes('on or before the due date'), 'a one-time payment after the due date was scheduled');
  await check(page, '35-scheduled-error');
  await page.fill('#amount', '20.00');
  await page.fill('#date', day(3));
  await page.click('main button:has-text("Schedule payment")');
  const sched = await mainText(page);
  expect(sched.includes('Scheduled $20.00 on') && sched.includes('Mastercard ending in 4444'), `scheduled: ${sched}`);
  await check(page, '36-scheduled');
  await page.getByRole('link', { name: /^Change/ }).click();
  await page.waitForURL('**/account/scheduled/*/edit');
  await check(page, '36a-scheduled-change');
  await page.fill('#amount', '25.00');
  await page.click('main button:has-text("Save the change")');
  expect((await mainText(page)).includes('Changed: $25.00'), 'the scheduled payment was not changed');
  await page.click('main button:has-text("Cancel")');
  await page.waitForURL('**/account/scheduled');
  expect((await mainText(page)).includes('Canceled'), 'the scheduled payment was not canceled');

  // Statements and reminder choices (consent recorded with its words).
  await page.goto(base + '/account');
  await page.getByRole('link', { name: 'Statements' }).click();
  await page.waitForURL('**/account/statements');
  expect((await mainText(page)).includes('$84.10'), 'statements: the bill is missing');
  await check(page, '37-statements');
  await page.goto(base + '/account');
  await page.getByRole('link', { name: 'Reminders' }).click();
  await page.waitForURL('**/account/notifications');
  await page.check('#email');
  await page.click('main button:has-text("Save reminder choices")');
  expect((await mainText(page)).includes('saved'), 'reminders not saved');
  expect(await page.isChecked('#email'), 'email reminders not on');
  await check(page, '38-reminders');

  // A payment arrangement: nothing is past due yet, so the refusal says so in plain words.
  await page.goto(base + '/account/arrangement');
  await check(page, '39-arrangement');
  await page.fill('#count', '3');
  await page.fill('#date', day(7));
  await page.click('main button:has-text("Ask for this arrangement")');
  expect((await mainText(page)).includes('There is no past-due amount to arrange.'), 'arrangement refusal not explained');
  await check(page, '40-arrangement-refused');

  // Security questions, the recovery path.
  await page.goto(base + '/account/security');
  await page.selectOption('#question_1', '0');
  await page.fill('#answer_1', 'Rex');
  await page.selectOption('#question_2', '2');
  await page.fill('#answer_2', 'Ford Model T');
  await page.click('main button:has-text("Save security questions")');
  expect((await mainText(page)).includes('saved'), 'security questions not saved');
  await check(page, '41-security-questions');

  // Sign-in codes from an authenticator app: scan (or type) the key, enter its code.
  await page.goto(base + '/account');
  await page.getByRole('link', { name: 'Sign-in codes' }).click();
  await page.waitForURL('**/account/signin-codes');
  await check(page, '42-signin-codes');
  await page.click('main button:has-text("Set up an authenticator app")');
  expect(await page.locator('.qr svg[role="img"]').count() === 1, 'no QR code');
  await check(page, '43-authenticator');
  const key = (await page.locator('code.secret-key').innerText()).trim();
  await page.fill('#code', appCode(key));
  await page.click('main button:has-text("Turn on app codes")');
  expect((await mainText(page)).includes('Your authenticator app is set up'), 'app codes not turned on');
  await check(page, '44-signin-codes-app');

  await page.goto(base + '/account');
  await page.click('header button:has-text("Sign out")');
  await page.waitForURL(base + '/');
  await page.goto(base + '/account');
  await page.waitForURL('**/signin');
  await check(page, '27-signed-out');
  console.log('customer flows passed');
} finally {
  await browser.close();
}
