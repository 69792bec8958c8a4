// Retakes README's screenshot (docs/screenshot.png): a real server with
// seeded people and rooms, seen by one of them in headless Chromium.
//
//   cargo build && cd tests/browser && node screenshot.mjs
//
// It shows a day separator, the "New messages" divider, an unread badge and
// a room to join. Install fonts-noto-color-emoji first, or the emoji in the
// conversation show as boxes.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer, launchBrowser, logInInUi, openPerson } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const OUTPUT = path.resolve(here, '../../docs/screenshot.png');

const server = await TestServer.start();
const browser = await launchBrowser();
try {
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const carol = await server.createUser('carol');
  const room = async (owner, name, topic, members) => {
    const { room: created } = await server.must(201, 'POST', '/rooms', { token: owner.token, body: { name, topic } });
    for (const member of members) await server.must(200, 'POST', `/rooms/${created.id}/join`, { token: member.token });
    return created;
  };
  const general = await room(alice, 'general', 'Daily chatter and coffee orders', [bob]);
  const random = await room(alice, 'random', 'Anything goes', [bob]);
  await room(carol, 'book-club', 'This month: Piranesi', []);

  await server.post(alice.token, general.id, 'Morning Bob! Did the deploy go out?');
  await server.post(bob.token, general.id, 'It did, at 9:02.\nRelease notes: https://example.com/releases/v2_(final).');
  await server.post(alice.token, general.id, 'Great, thanks! Lunch at noon?');
  await server.post(alice.token, general.id, 'The ramen place on Fifth is open again.');

  const { page } = await openPerson(browser, { locale: 'en-US' });
  await logInInUi(page, server, 'bob');
  await page.goto(`${server.url}/#/room/${general.id}`);
  await page.locator('#messages li[data-seq]', { hasText: 'ramen place' }).waitFor();

  // Bob steps out to random; what comes meanwhile is unread when he is back.
  await page.goto(`${server.url}/#/room/${random.id}`);
  await page.locator('#room-title', { hasText: 'random' }).waitFor();
  await server.post(alice.token, general.id, 'Booked a table for four 🍜');
  await server.post(alice.token, general.id, 'Carol is coming too, she starts on the platform team today.');
  await page.goto(`${server.url}/#/room/${general.id}`);
  await page.locator('#messages .unread-divider').waitFor();
  await server.post(alice.token, random.id, 'Anyone seen my umbrella?');
  await server.post(alice.token, random.id, 'Blue one, with ducks.');
  await page.locator('#my-rooms a', { hasText: 'random' }).locator('.badge', { hasText: '2' }).waitFor();

  await page.evaluate(() => document.activeElement?.blur());
  await page.mouse.move(0, 0);
  await page.screenshot({ path: OUTPUT });
  console.log(`wrote ${OUTPUT}`);
} finally {
  await browser.close();
  await server.stop();
}
