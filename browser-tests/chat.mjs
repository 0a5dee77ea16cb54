// Live chat in a real browser: a customer and a representative in two pages (two browser
// contexts, so two separate sign-ins) exchanging messages live, then a secure pay request the
// customer pays in billpay's own form while the representative sees only the result. axe-core
// runs on the chat and desk pages.
//
//   node browser-tests/chat.mjs BASE_URL ACCOUNT_NUMBER ZIP STAFF_EMAIL STAFF_PASSWORD TOTP_CODE
import { launch, newPage, check, expect, mainText, assertNoFullNumbers, fail } from './lib.mjs';

const [base, account, zip, email, password, code] = process.argv.slice(2);
if (!code) fail('usage: chat.mjs BASE_URL ACCOUNT ZIP STAFF_EMAIL STAFF_PASSWORD TOTP_CODE');
const CARD = '4242424242424242';
const TYPED = '4111 1111 1111 1111';

const browser = await launch();
try {
  // The representative signs in: password, then the authenticator code.
  const agent = await newPage(browser);
  await agent.goto(base + '/desk');
  await agent.waitForURL('**/desk/signin');
  await check(agent, '40-desk-signin');
  await agent.fill('#email', email);
  await agent.fill('#password', password);
  await agent.click('button[type=submit]');
  await agent.waitForURL('**/desk/signin/code');
  await check(agent, '41-desk-code');
  await agent.fill('#code', code);
  await agent.click('button[type=submit]');
  await agent.waitForURL(/\/desk$/);
  await agent.click('button:has-text("Set available")');
  await agent.waitForSelector('#availability:has-text("available")');
  await check(agent, '42-desk-inbox');

  // The customer starts a chat from the link on every page, and asks the bot.
  const customer = await newPage(browser);
  await customer.goto(base + '/');
  await customer.getByRole('link', { name: 'Chat with us' }).click();
  await customer.waitForURL('**/chat');
  await check(customer, '30-chat-start');
  await customer.fill('#name', 'Pat Payer');
  await customer.fill('#account_number', account);
  await customer.fill('#postal_code', zip);
  await customer.click('button:has-text("Start chat")');
  await customer.waitForSelector('.msg-bot');
  await customer.fill('#message', 'why did my payment fail?');
  await customer.click('button:has-text("Send")');
  // Sent without a reload (the script), answered live.
  await customer.waitForSelector('.msg-bot:has-text("insufficient funds")');
  expect(await customer.inputValue('#message') === '', 'the message box was not cleared');
  await check(customer, '31-chat-bot');
  await customer.fill('#message', `I typed my card ${TYPED} by mistake, get me an agent`);
  await customer.click('button:has-text("Send")');
  await customer.waitForSelector('.msg-system:has-text("has joined")');
  await assertNoFullNumbers(customer, [TYPED, TYPED.replaceAll(' ', '')], 'chat after typing a card');
  await check(customer, '32-chat-joined');

  // The representative opens the conversation: transcript (masked) and account panel.
  await agent.goto(base + '/desk');
  await agent.click('main a[href^="/desk/conversations/"]');
  await agent.waitForSelector('#chat-log');
  const transcript = await mainText(agent);
  expect(transcript.includes('************1111'), 'desk: the typed card is not masked');
  expect(transcript.includes('insufficient funds'), 'desk: decline reason missing from the panel');
  await assertNoFullNumbers(agent, [TYPED, TYPED.replaceAll(' ', ''), '4000000000009995'], 'desk conversation');
  await check(agent, '43-desk-conversation');

  // Messages both ways, live (no reload on either side), with the typing indicator and the
  // read receipt.
  await agent.fill('#message', 'Hello Pat, I can help with that payment.');
  await customer.waitForSelector('#chat-typing:has-text("The representative is typing")');
  await agent.click('button:has-text("Send reply")');
  await customer.waitForSelector('.msg-agent:has-text("I can help with that payment")');
  await agent.waitForSelector('.msg-agent:has-text("I can help with that payment") .receipt:has-text("Read")');
  await customer.fill('#message', 'Thank you! Can I pay now?');
  await customer.click('button:has-text("Send")');
  await agent.waitForSelector('.msg-customer:has-text("Can I pay now?")');

  // The secure pay request: the customer pays in billpay's form; the agent sees the result.
  await agent.fill('#amount', '84.10');
  await agent.click('button:has-text("Send pay request")');
  await customer.waitForSelector('a:has-text("Open the secure pay form")');
  await check(customer, '33-chat-pay-request');
  await customer.click('a:has-text("Open the secure pay form")');
  await customer.waitForURL('**/pay/method');
  await customer.check('#method_card');
  await customer.fill('#card_number', CARD);
  await customer.fill('#exp_month', '12');
  await customer.fill('#exp_year', '2034');
  await customer.fill('#cvc', '123');
  await customer.fill('#postal_code', zip);
  await customer.click('button[type=submit]');
  await customer.waitForURL('**/pay/review');
  await customer.click('button:has-text("Pay $84.10")');
  await customer.waitForSelector('strong.confirmation');

  await agent.waitForSelector('.msg-system:has-text("was approved")');
  const result = await mainText(agent);
  expect(result.includes('Visa ending in 4242 was approved'), `desk: result missing: ${result}`);
  await assertNoFullNumbers(agent, [CARD], 'desk after payment');
  await check(agent, '44-desk-paid');
  console.log('chat flows passed');
} finally {
  await browser.close();
}
