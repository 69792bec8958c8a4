// Phone width (390 px): no horizontal scrolling anywhere, however long the
// words or URLs; the room list is a drawer that opens and closes by keyboard.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  TestServer,
  createRoomInUi,
  eventually,
  launchBrowser,
  openPerson,
  screenshot,
  sendInUi,
  signUpInUi,
} from './harness.mjs';

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true };

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

function pageWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

test('at 390 px nothing scrolls sideways and the room list is a drawer', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser, PHONE);

  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  assert.ok((await pageWidth(page)) <= 390);
  await screenshot(page, 'mobile-login');

  await signUpInUi(page, server, 'pocket');
  // With no room open, the drawer shows the rooms straight away.
  const sidebar = page.locator('#sidebar');
  await page.waitForFunction(() => document.getElementById('sidebar').classList.contains('open'));
  await createRoomInUi(page, 'a-room-with-a-rather-long-name-that-must-not-push-the-layout', 'and a topic that goes on and on and on and on');
  await sidebar.waitFor({ state: 'hidden' });

  const longWord = 'Supercalifragilisticexpialidocious'.repeat(8);
  const longUrl = `https://example.com/${'very-long-path-segment/'.repeat(12)}?q=${'x'.repeat(80)}`;
  await sendInUi(page, longWord);
  await sendInUi(page, `Look: ${longUrl}`);
  await sendInUi(page, 'short one');
  await page.locator('#messages li[data-seq]', { hasText: 'short one' }).waitFor();
  assert.ok((await pageWidth(page)) <= 390, `page is ${await pageWidth(page)} px wide`);
  const paneOverflow = await page.evaluate(() => {
    const pane = document.getElementById('timeline');
    return pane.scrollWidth - pane.clientWidth;
  });
  assert.equal(paneOverflow, 0, 'the message pane scrolls sideways');
  await screenshot(page, 'mobile-chat');

  // Keyboard: the menu button opens the drawer with focus inside; Escape
  // closes it and puts focus back on the button.
  const menu = page.getByRole('button', { name: 'Open room list' });
  await menu.focus();
  await page.keyboard.press('Enter');
  await sidebar.waitFor({ state: 'visible' });
  assert.equal(await menu.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.evaluate(() => document.getElementById('sidebar').contains(document.activeElement)), true);
  await page.waitForTimeout(250); // let the slide-in finish before the picture
  await screenshot(page, 'mobile-rooms');
  assert.ok((await pageWidth(page)) <= 390);
  await page.keyboard.press('Escape');
  await sidebar.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'sidebar-open');
  assert.equal(await menu.getAttribute('aria-expanded'), 'false');

  assert.deepEqual(await trouble.problems(), []);
});

test('on a touch screen Enter starts a new line and the send button sends', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser, PHONE);
  await signUpInUi(page, server, 'thumbs');
  await createRoomInUi(page, 'pocket-notes');
  const box = page.getByLabel('Message', { exact: true });
  await box.focus();
  await page.keyboard.type('shopping:');
  await page.keyboard.press('Enter');
  await page.keyboard.type('eggs');
  assert.equal(await box.inputValue(), 'shopping:\neggs');
  assert.equal(await page.locator('#messages li').count(), 0, 'Enter sent the message');
  await page.getByRole('button', { name: 'Send message' }).tap();
  const sent = page.locator('#messages li[data-seq]', { hasText: 'eggs' });
  await sent.waitFor();
  assert.equal(await sent.locator('.message-body').innerText(), 'shopping:\neggs');
  assert.equal(await box.inputValue(), '');
  assert.deepEqual(await trouble.problems(), []);
});

test('the phone header leaves room for the name, and a tap on it tells the whole story', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { page, trouble } = await openPerson(browser, PHONE);
  await signUpInUi(page, server, 'reader');
  const name = 'the-neighbourhood-association-garden-committee';
  const topic = 'Watering rota, seed swaps, and who borrowed the wheelbarrow last spring';
  await createRoomInUi(page, name, topic);

  // The actions take little of the width; the title gets the rest.
  const title = await page.locator('.chat-title').boundingBox();
  assert.ok(title.width >= 390 * 0.55, `the title gets only ${title.width} px of 390`);
  for (const label of [/^Members/, /^Leave/]) {
    const box = await page.getByRole('button', { name: label }).boundingBox();
    assert.ok(box.width <= 48, `${label} is ${box.width} px wide`);
  }
  assert.ok((await pageWidth(page)) <= 390);
  await page.waitForTimeout(250); // let the drawer finish sliding away before the picture
  await screenshot(page, 'mobile-header');

  // A tap on the name shows all of it, the topic, and how many are in the room.
  await page.locator('#room-title').tap();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const text = await dialog.innerText();
  assert.ok(text.includes(name), 'the full name');
  assert.ok(text.includes(topic), 'the full topic');
  assert.match(text, /1 member\b/);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });

  // Leave acts at once but can be undone.
  await page.getByRole('button', { name: /^Leave/ }).tap();
  const undo = page.getByRole('button', { name: 'Undo' });
  await undo.waitFor();
  await undo.tap();
  await page.locator('#room-title', { hasText: name }).waitFor();
  await eventually(async () => (await page.locator('#composer').isVisible()), { message: 'back in the room' });
  assert.deepEqual(await trouble.problems(), []);
});
