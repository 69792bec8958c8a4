// Message search: the dialog (Ctrl+Shift+F or /) finds what someone else
// wrote, marks exactly the matched words (counted in code points, so emoji
// before them do not shift the marks), opens a hit far back in history
// scrolled to and highlighted, never shows a private room one is not in,
// reads an invalid query out as the server's sentence, and keeps a hostile
// body as text.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestServer, eventually, launchBrowser, logInInUi, openPerson, openRoomId } from './harness.mjs';

const FILLER = 110;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/**
 * Types `query` into the open search dialog and searches until a hit shows:
 * the index follows the log within about a second, so the first try may be early.
 */
async function searchUntilFound(page, query) {
  const input = page.getByLabel('Search for');
  await input.fill(query);
  await eventually(
    async () => {
      await input.press('Enter');
      return page
        .locator('#search-results .search-hit')
        .first()
        .waitFor({ timeout: 1500 })
        .then(() => true, () => false);
    },
    { timeout: 15_000, interval: 200, message: `a hit for ${query}` },
  );
}

test('search finds, marks, scopes, pages and jumps to a message far back', async (t) => {
  // Searches are rate-limited per user; this test makes many in a row.
  const server = await TestServer.start({ HEARTH_SEARCH_PER_SEC: '100', HEARTH_SEARCH_BURST: '100' });
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const carol = await server.createUser('carol');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'garden' } });
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: bob.token });
  const { room: other } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'kitchen' } });
  await server.must(200, 'POST', `/rooms/${other.id}/join`, { token: bob.token });

  // Far back: the first message, then a long history after it.
  const old = await server.post(alice.token, room.id, 'an ancient pangolin story');
  for (let n = 1; n <= FILLER; n += 1) await server.post(alice.token, room.id, `filler ${n}`);
  const emojiBody = '🦘🎉 Café au lait, then the quokka 👋🏽 waved';
  await server.post(alice.token, room.id, emojiBody);
  await server.post(alice.token, other.id, 'a quokka in the kitchen too');
  const hostile = '<img src=x onerror="window.__pwned=true"><script>window.__pwned=true</script> xsspayload';
  const last = await server.post(alice.token, room.id, hostile);
  // Bob has read garden, so it opens at its newest page, not at a first unread far back.
  const read = await server.api('POST', `/rooms/${room.id}/read`, { token: bob.token, body: { seq: last.seq } });
  assert.ok(read.status < 300, `read: ${read.status}`);
  // Carol's private room: bob is not in it, so its words are never his to find.
  const { room: secret } = await server.must(201, 'POST', '/rooms', {
    token: carol.token,
    body: { name: 'hideout', visibility: 'private' },
  });
  await server.post(carol.token, secret.id, 'the quokka hides a secretmarmot here');

  const { page, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'bob');
  await page.goto(`${server.url}/#/room/${room.id}`);
  await page.locator('#messages li[data-seq]').first().waitFor();

  // Ctrl+Shift+F opens the dialog with focus in its box.
  await page.keyboard.press('Control+Shift+F');
  const dialog = page.getByRole('dialog', { name: 'Search messages' });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'search-input');

  // The emoji body: the mark is exactly the word, the body whole and in order.
  await searchUntilFound(page, 'quokka');
  const hits = page.locator('#search-results .search-hit');
  const gardenHit = hits.filter({ hasText: '#garden' });
  await gardenHit.waitFor();
  assert.deepEqual(await gardenHit.locator('mark').allTextContents(), ['quokka']);
  assert.equal(await gardenHit.locator('.search-hit-body').textContent(), emojiBody);
  assert.equal(await gardenHit.locator('.search-hit-author').textContent(), 'alice');
  assert.ok(await gardenHit.locator('time').count(), 'the hit says when');
  // Both rooms bob is in; never carol's private one.
  await hits.filter({ hasText: '#kitchen' }).waitFor();
  assert.equal(await hits.count(), 2, 'the private room is not searched');
  assert.equal(await dialog.getByText('secretmarmot').count(), 0);

  // Accents are ignored by the server; the mark covers the word as written.
  await page.getByLabel('Search for').fill('cafe');
  await page.getByLabel('Search for').press('Enter');
  await page.locator('#search-results mark', { hasText: 'Café' }).waitFor();
  assert.deepEqual(await page.locator('#search-results mark').allTextContents(), ['Café']);

  // A word only in the private room finds nothing, and says so.
  await page.getByLabel('Search for').fill('secretmarmot');
  await page.getByLabel('Search for').press('Enter');
  await page.locator('#search-status', { hasText: 'No messages found.' }).waitFor();
  assert.equal(await hits.count(), 0);

  // "Only in garden" leaves the kitchen's hit out.
  await page.getByLabel('Search for').fill('quokka');
  await page.getByLabel('Only in garden').check();
  await page.locator('#search-status', { hasText: 'found in garden' }).waitFor();
  assert.equal(await hits.count(), 1);
  assert.equal(await hits.first().getAttribute('data-room'), room.id);
  await page.getByLabel('Only in garden').uncheck();
  await page.locator('#search-status', { hasText: /^2 messages found\.$/ }).waitFor();

  // Newest first, one page at a time: "Load more" follows `next`.
  await page.getByLabel('Order').selectOption('recent');
  await page.getByLabel('Search for').fill('filler');
  await page.getByLabel('Search for').press('Enter');
  await page.locator('#search-status', { hasText: 'more to load' }).waitFor();
  assert.equal(await hits.count(), 20);
  assert.equal(await hits.first().locator('.search-hit-body').textContent(), `filler ${FILLER}`);
  await page.getByRole('button', { name: 'Load more' }).click();
  await eventually(async () => (await hits.count()) === 40, { message: 'the second page' });
  const seqs = await hits.evaluateAll((links) => links.map((a) => Number(a.dataset.seq)));
  assert.equal(new Set(seqs).size, 40, 'no hit twice');
  assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), 'newest first');
  await page.getByLabel('Order').selectOption('relevance');

  // An invalid query reads as the server's own sentence.
  const refused = await server.api('GET', `/search?q=${encodeURIComponent('"open')}`, { token: bob.token });
  assert.equal(refused.body.error.code, 'invalid_query');
  await page.getByLabel('Search for').fill('"open');
  await page.getByLabel('Search for').press('Enter');
  const error = page.locator('#search-error');
  await error.waitFor();
  assert.equal(await error.textContent(), refused.body.error.message);
  assert.equal(await page.getByLabel('Search for').getAttribute('aria-invalid'), 'true');
  assert.equal(await hits.count(), 0);

  // A hostile body in a hit stays text.
  await searchUntilFound(page, 'xsspayload');
  assert.equal(await page.locator('#search-results .search-hit-body').first().textContent(), hostile);
  assert.equal(await page.locator('#search-results img, #search-results script').count(), 0);

  // The first message, a hundred messages back: choosing it opens the room
  // there, with the message on screen and highlighted, and the dialog gone.
  await page.getByLabel('Search for').fill('pangolin');
  await page.getByLabel('Search for').press('Enter');
  const oldHit = page.locator(`#search-results .search-hit[data-seq="${old.seq}"]`);
  await oldHit.waitFor();
  assert.deepEqual(await oldHit.locator('mark').allTextContents(), ['pangolin']);
  assert.equal(
    await page.locator(`#messages li[data-seq="${old.seq}"]`).count(),
    0,
    'the message was not loaded before the jump',
  );
  const pages = [];
  const countPages = (request) => {
    if (/\/messages\?.*before=/.test(request.url())) pages.push(request.url());
  };
  page.on('request', countPages);
  await oldHit.click();
  await dialog.waitFor({ state: 'hidden' });
  const target = page.locator(`#messages li[data-seq="${old.seq}"]`);
  await target.waitFor();
  page.off('request', countPages);
  // A hundred messages back is one larger page, not one page of 50 after another.
  assert.equal(pages.length, 1, `older pages asked for: ${pages.join(', ')}`);
  await eventually(() => target.evaluate((li) => li.classList.contains('highlighted')), { message: 'the highlight' });
  assert.ok(await target.isVisible());
  assert.ok(
    await target.evaluate((li) => {
      const pane = document.getElementById('timeline').getBoundingClientRect();
      const box = li.getBoundingClientRect();
      return box.top >= pane.top - 1 && box.bottom <= pane.bottom + 1;
    }),
    'the message is scrolled into view',
  );
  assert.equal(openRoomId(page), room.id);
  assert.match(await target.locator('.message-body').textContent(), /ancient pangolin story/);
  // The history around it is there too: the next message follows it.
  await page.locator(`#messages li[data-seq="${old.seq + 1}"]`).waitFor();

  // From the other room, a hit in garden switches rooms first.
  await page.goto(`${server.url}/#/room/${other.id}`);
  await page.locator('#room-title', { hasText: 'kitchen' }).waitFor();
  await page.locator('#timeline').focus();
  await page.keyboard.press('/');
  await dialog.waitFor();
  await page.getByLabel('Search for').fill('quokka');
  await page.getByLabel('Search for').press('Enter');
  await gardenHit.waitFor();
  await gardenHit.press('Enter');
  await page.locator('#room-title', { hasText: 'garden' }).waitFor();
  const quokka = page.locator('#messages li.highlighted', { hasText: 'quokka' });
  await quokka.waitFor();

  // "/" typed in the message box is just a slash.
  await page.getByLabel('Message', { exact: true }).fill('');
  await page.getByLabel('Message', { exact: true }).press('/');
  assert.equal(await dialog.isVisible(), false);
  assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), '/');

  assert.equal(await page.evaluate(() => window.__pwned), false);
  assert.deepEqual(await trouble.problems(), []);
});

test('at 390 px search opens from the room list, fits, and a hit opens its room', async (t) => {
  const server = await TestServer.start({ HEARTH_SEARCH_PER_SEC: '100', HEARTH_SEARCH_BURST: '100' });
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'a room with a rather long name indeed' } });
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: bob.token });
  const long = `${'supercalifragilistic'.repeat(8)} wombat https://example.com/${'path/'.repeat(20)}`;
  await server.post(alice.token, room.id, long);

  const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true };
  const { page, trouble } = await openPerson(browser, PHONE);
  await logInInUi(page, server, 'bob');
  // With no room open yet the drawer opens by itself on a phone, once the
  // room list is in; read at once, its state could still be the closed
  // one, and a click then lands on a page the open drawer has made inert.
  await page
    .locator('#sidebar-open[aria-expanded="true"]')
    .waitFor({ state: 'attached', timeout: 10_000 })
    .catch(() => page.getByRole('button', { name: /^Open room list/ }).click());
  await page.getByRole('button', { name: 'Search messages' }).click();
  const dialog = page.getByRole('dialog', { name: 'Search messages' });
  await dialog.waitFor();
  await searchUntilFound(page, 'wombat');
  const box = await dialog.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, `the dialog spans ${box.x}..${box.x + box.width}`);
  assert.ok(
    await dialog.evaluate((d) => d.scrollWidth <= d.clientWidth),
    'nothing in the dialog scrolls sideways',
  );
  await page.locator('#search-results .search-hit').first().click();
  await dialog.waitFor({ state: 'hidden' });
  const target = page.locator('#messages li.highlighted', { hasText: 'wombat' });
  await target.waitFor();
  assert.ok(await target.isVisible(), 'the drawer is closed and the message shows');
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= 390), true);
  assert.deepEqual(await trouble.problems(), []);
});
