// Guest quick pay in a real browser: a declined card, then another card that pays; the
// confirmation, the printable receipt, the demo mailbox; field errors; a phone-sized screen
// with JavaScript off; the keyboard alone. axe-core runs on every page.
//
//   node browser-tests/guest.mjs BASE_URL ACCOUNT_NUMBER ZIP
import { launch, newPage, check, snap, expect, mainText, assertNoFullNumbers, fail } from './lib.mjs';

const [base, account, zip] = process.argv.slice(2);
if (!base || !account || !zip) fail('usage: guest.mjs BASE_URL ACCOUNT_NUMBER ZIP');
const DECLINE = '4000000000009995';
const GOOD = '4242424242424242';

const browser = await launch();
try {
  // 1. Desktop, JavaScript on: field errors, a decline, then success with another card.
  const page = await newPage(browser);
  await page.goto(base + '/');
  await check(page, '01-home');
  await page.getByRole('link', { name: 'Pay without signing in' }).click();
  await check(page, '02-lookup');

  await page.fill('#account_number', '12345');
  await page.fill('#postal_code', 'abc');
  await page.click('button[type=submit]');
  expect((await mainText(page)).includes('not a valid account number'), 'lookup: no account-number error shown');
  expect((await mainText(page)).includes('5-digit ZIP'), 'lookup: no ZIP error shown');
  expect(await page.getAttribute('#account_number', 'aria-invalid') === 'true', 'lookup: field not marked invalid');
  await check(page, '03-lookup-errors');

  await page.fill('#account_number', account);
  await page.fill('#postal_code', '99999');
  await page.click('button[type=submit]');
  expect((await mainText(page)).includes('could not find an account'), 'lookup: wrong ZIP not refused');

  await page.fill('#account_number', account);
  await page.fill('#postal_code', zip);
  await page.click('button[type=submit]');
  await page.waitForURL('**/pay/amount');
  const amountText = await mainText(page);
  expect(amountText.includes('$84.10'), `amount page: balance missing: ${amountText}`);
  await check(page, '04-amount');
  await page.check('#amount_full');
  await page.click('button[type=submit]');
  await page.waitForURL('**/pay/method');
  await check(page, '05-method');

  await page.check('#method_card');
  await page.fill('#card_number', '4242 4242 4242 4241');
  await page.fill('#exp_month', '12');
  await page.fill('#exp_year', '34');
  await page.fill('#cvc', '12');
  await page.fill('#postal_code', zip);
  await page.click('button[type=submit]');
  const methodErrors = await mainText(page);
  expect(methodErrors.includes('not a valid card number'), 'method: bad card number not explained');
  expect(await page.inputValue('#card_number') === '', 'method: the card number was sent back to the browser');
  await check(page, '06-method-errors');

  await page.fill('#card_number', DECLINE);
  await page.fill('#cvc', '123');
  await page.click('button[type=submit]');
  await page.waitForURL('**/pay/review');
  expect((await mainText(page)).includes('Visa ending in 9995'), 'review: method not shown as last four');
  await assertNoFullNumbers(page, [DECLINE], 'review');
  await check(page, '07-review');
  await page.click('button:has-text("Pay $84.10")');
  const declined = await mainText(page);
  expect(declined.includes('did not go through'), `decline page not shown: ${declined}`);
  expect(declined.includes('insufficient funds'), 'decline: reason not in plain language');
  expect(declined.includes('another card or bank account'), 'decline: no next step');
  expect(await page.getByRole('link', { name: 'Chat with us about this payment' }).count() === 1, 'decline: no chat');
  await check(page, '08-declined');

  await page.getByRole('link', { name: 'Pay with another card or bank account' }).click();
  await page.waitForURL('**/pay/method');
  await page.check('#method_card');
  await page.fill('#card_number', GOOD);
  await page.fill('#exp_month', '12');
  await page.fill('#exp_year', '2034');
  await page.fill('#cvc', '123');
  await page.fill('#postal_code', zip);
  await page.click('button[type=submit]');
  await page.waitForURL('**/pay/review');
  // A double click sends the form twice: one payment.
  // The second submission may abort the first navigation: wait for the page, not the URL.
  await page.dblclick('button:has-text("Pay $84.10")');
  await page.waitForSelector('strong.confirmation');
  const done = await mainText(page);
  const confirmation = (done.match(/\d{3}-\d{3}-\d{4}/) || [])[0];
  expect(confirmation, `confirmation page without a confirmation number: ${done}`);
  expect(done.includes('Visa ending in 4242'), 'confirmation: method missing');
  await assertNoFullNumbers(page, [GOOD, DECLINE], 'confirmation');
  await check(page, '09-confirmation');
  console.log(`confirmation ${confirmation}`);

  await page.getByRole('link', { name: 'View printable receipt' }).click();
  await page.waitForURL('**/receipts/**');
  expect((await mainText(page)).includes(confirmation), 'receipt: confirmation number missing');
  await assertNoFullNumbers(page, [GOOD], 'receipt');
  await check(page, '10-receipt');

  await page.goto(base + '/demo/mailbox');
  await check(page, '11-mailbox');
  await page.click(`text=confirmation ${confirmation}`);
  const mail = await mainText(page);
  expect(mail.includes(confirmation) && mail.includes('$84.10'), `mailbox: the receipt email is not readable: ${mail}`);
  await assertNoFullNumbers(page, [GOOD], 'mailbox message');
  await check(page, '12-mailbox-receipt');
  await page.context().close();

  // 2. A phone-sized screen, a bank account, and the duplicate guard asking before paying the
  // same amount twice.
  const phone = await newPage(browser, { mobile: true });
  await phone.goto(base + '/pay');
  await phone.fill('#account_number', account);
  await phone.fill('#postal_code', zip);
  await phone.click('button[type=submit]');
  await phone.waitForURL('**/pay/amount');
  await phone.check('#amount_other');
  await phone.fill('#amount', '84.10');
  await phone.click('button[type=submit]');
  await phone.waitForURL('**/pay/method');
  await phone.check('#method_ach');
  await phone.fill('#holder_name', 'Pat Payer');
  await phone.fill('#routing_number', '110000000');
  await phone.fill('#bank_account_number', '000123456789');
  await phone.check('#account_type_checking');
  await phone.click('button[type=submit]');
  await phone.waitForURL('**/pay/review');
  expect((await mainText(phone)).includes('checking account ending in 6789'), 'phone: bank account not shown as last four');
  expect((await mainText(phone)).includes('you authorize'), 'phone: no bank debit authorization shown');
  await check(phone, '13-phone-review-bank');
  await phone.click('button:has-text("Pay $84.10")');
  const dup = await mainText(phone);
  expect(/You paid \$84\.10 online (less than a minute|\d+ minutes?) ago\. Pay again\?/.test(dup), `phone: no duplicate question: ${dup}`);
  await check(phone, '14-phone-duplicate');
  await phone.click('button:has-text("Yes, pay $84.10 again")');
  await phone.waitForURL('**/pay/done/**');
  expect((await mainText(phone)).includes('Payment submitted'), 'phone: bank payment not shown as submitted');
  await assertNoFullNumbers(phone, ['000123456789'], 'phone confirmation');
  await check(phone, '15-phone-confirmation');
  await phone.context().close();

  // 3. JavaScript off: the whole flow still works (forms post, the server redirects).
  const nojs = await newPage(browser, { javaScriptEnabled: false });
  await nojs.goto(base + '/pay');
  await nojs.fill('#account_number', account);
  await nojs.fill('#postal_code', zip);
  await nojs.click('button[type=submit]');
  await nojs.waitForURL('**/pay/amount');
  await nojs.check('#amount_other');
  await nojs.fill('#amount', '5.00');
  await nojs.click('button[type=submit]');
  await nojs.waitForURL('**/pay/method');
  await nojs.check('#method_card');
  await nojs.fill('#card_number', GOOD);
  await nojs.fill('#exp_month', '12');
  await nojs.fill('#exp_year', '34');
  await nojs.fill('#cvc', '123');
  await nojs.fill('#postal_code', zip);
  await nojs.click('button[type=submit]');
  await nojs.waitForURL('**/pay/review');
  await nojs.click('button:has-text("Pay $5.00")');
  await nojs.waitForURL('**/pay/done/**');
  expect((await mainText(nojs)).includes('your payment is complete'), 'JavaScript off: payment not completed');
  await snap(nojs, '16-nojs-confirmation');
  await nojs.context().close();

  // 4. The keyboard alone: skip link, then Tab to the fields, type, Enter.
  const kb = await newPage(browser);
  await kb.goto(base + '/pay');
  await kb.keyboard.press('Tab');
  expect(await kb.evaluate(() => document.activeElement.textContent.trim()) === 'Skip to main content', 'keyboard: the first Tab is not the skip link');
  await kb.keyboard.press('Enter');
  let guard = 0;
  while ((await kb.evaluate(() => document.activeElement.id)) !== 'account_number' && guard++ < 10) {
    await kb.keyboard.press('Tab');
  }
  expect(guard < 10, 'keyboard: the account number field cannot be reached with Tab');
  await kb.keyboard.type(account);
  await kb.keyboard.press('Tab');
  await kb.keyboard.type(zip);
  await kb.keyboard.press('Enter');
  await kb.waitForURL('**/pay/amount');
  console.log('ok keyboard only');
  await kb.context().close();

  console.log('guest flows passed');
} finally {
  await browser.close();
}
