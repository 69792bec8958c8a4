// Scroll-back: a room with more history than one page opens at the newest
// messages; scrolling up loads older pages (`before=`) until the very first
// message, without moving what the reader is looking at and without gaps or
// duplicates.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestServer, launchBrowser, logInInUi, openPerson, shownSeqs } from './harness.mjs';

const TOTAL = 130;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Top edge of message `seq` relative to the scrolling pane, in px. */
function topOf(page, seq) {
  return page.evaluate((wanted) => {
    const pane = document.getElementById('timeline');
    const li = document.querySelector(`#messages li[data-seq="${wanted}"]`);
    return li.getBoundingClientRect().top - pane.getBoundingClientRect().top;
  }, seq);
}

test('scrolling up loads the whole history in order, keeping the reader in place', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { token } = await server.createUser('historian');
  const { room } = await server.must(201, 'POST', '/rooms', { token, body: { name: 'archive' } });
  for (let n = 1; n <= TOTAL; n += 1) await server.post(token, room.id, `message ${n}`);

  const { page, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'historian');
  await page.locator(`#messages li[data-seq="${TOTAL}"]`).waitFor();

  // Opens at the bottom, showing the newest page only.
  const seqs = await shownSeqs(page);
  assert.equal(seqs.at(-1), TOTAL);
  assert.ok(seqs[0] > 1, 'the first page is not the whole history');
  assert.equal(
    await page.evaluate(() => {
      const pane = document.getElementById('timeline');
      return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 2;
    }),
    true,
    'scrolled to the newest message',
  );
  await page.locator('#messages li', { hasText: `message ${TOTAL}` }).isVisible();

  // Jump to the top: the older page goes above without moving what was in view.
  const firstShown = seqs[0];
  const topBefore = await page.evaluate((seq) => {
    const pane = document.getElementById('timeline');
    pane.scrollTop = 0;
    const li = document.querySelector(`#messages li[data-seq="${seq}"]`);
    return li.getBoundingClientRect().top - pane.getBoundingClientRect().top;
  }, firstShown);
  await page.locator(`#messages li[data-seq="${firstShown - 1}"]`).waitFor();
  const topAfter = await topOf(page, firstShown);
  assert.ok(Math.abs(topAfter - topBefore) <= 2, `the reader's place moved from ${topBefore}px to ${topAfter}px`);

  // Keep scrolling up with the mouse wheel until the very first message.
  const pane = page.locator('#timeline');
  await pane.hover();
  for (let i = 0; i < 30 && !(await page.locator('#messages li[data-seq="1"]').count()); i += 1) {
    await page.mouse.wheel(0, -4000);
    await page.waitForTimeout(150);
  }
  await page.locator('#messages li[data-seq="1"]').waitFor();
  await page.locator('#history-status', { hasText: 'This is the start of archive.' }).waitFor();

  const all = await shownSeqs(page);
  assert.deepEqual(all, Array.from({ length: TOTAL }, (_, i) => i + 1), 'every message once, in order');
  const bodies = await page.locator('#messages li[data-seq] .message-body').allTextContents();
  assert.deepEqual(bodies, Array.from({ length: TOTAL }, (_, i) => `message ${i + 1}`));
  assert.deepEqual(await trouble.problems(), []);
});
