// Message formatting: what a person types is stored and sent as typed, and
// shown as formatting (strong, em, del, code, fenced blocks with their
// language, quotes, lists, links); the source comes back for editing and
// copying; mentions, reply quotes and search marks work inside it; long code
// scrolls inside its block on a phone; crafted bodies render in linear time.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestServer, eventually, launchBrowser, logInInUi, openPerson, sendInUi } from './harness.mjs';

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, isMobile: true };
const FAST_SENDS = { HEARTH_SEND_BURST: '1000', HEARTH_SEND_PER_SEC: '1000' };

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A server with alice and bob in one room; returns both tokens and the room. */
async function twoInARoom(t, env = {}) {
  const server = await TestServer.start(env);
  t.after(() => server.stop());
  const alice = await server.createUser('alice');
  const bob = await server.createUser('bob');
  const { room } = await server.must(201, 'POST', '/rooms', { token: alice.token, body: { name: 'formatting' } });
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: bob.token });
  return { server, alice, bob, room };
}

async function openRoom(server, room, username, contextOptions) {
  const person = await openPerson(browser, contextOptions);
  await logInInUi(person.page, server, username);
  await person.page.goto(`${server.url}/#/room/${encodeURIComponent(room.id)}`);
  await person.page.locator('#composer').waitFor();
  return person;
}

/** The message whose own body (not a quote of it) contains `text`. */
const messageWith = (page, text) =>
  page.locator('#messages li[data-seq]').filter({ has: page.locator('.message-main > .message-body', { hasText: text }) });

test('each construct typed in the message box renders as its elements, and the source comes back to edit and copy', async (t) => {
  const { server, room, bob } = await twoInARoom(t);
  const alice = await openRoom(server, room, 'alice');
  const { page } = alice;
  await alice.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });

  const inline = '**bold** __also bold__ *it* _it too_ ~~gone~~ `co*de*` snake_case_name 2*3*4 a\\*b';
  const fenced = '```rust\nfn main() {\n    println!("hi");\n}\n```';
  const quoted = '> quoted **words**\n> > deeper\nafter';
  const lists = '- one\n- two\n  - nested\n1. first\n2. second';
  const links = '[the docs](https://example.com/docs_(v2)) https://example.com/bare, ana@example.com [bad](javascript:alert(1))';
  for (const body of [inline, fenced, quoted, lists, links]) await sendInUi(page, body);
  await page.locator('#messages li[data-seq]').nth(4).waitFor();

  // The server kept each exactly as typed.
  const stored = await server.must(200, 'GET', `/rooms/${room.id}/messages`, { token: bob.token });
  assert.deepEqual(
    stored.messages.map((m) => m.body),
    [inline, fenced, quoted, lists, links],
  );

  const bodies = page.locator('#messages li[data-seq] .message-body');
  const first = bodies.nth(0);
  assert.deepEqual(await first.locator('strong').allTextContents(), ['bold', 'also bold']);
  assert.deepEqual(await first.locator('em').allTextContents(), ['it', 'it too']);
  assert.deepEqual(await first.locator('del').allTextContents(), ['gone']);
  assert.deepEqual(await first.locator('code').allTextContents(), ['co*de*']);
  assert.equal(
    await first.textContent(),
    'bold also bold it it too gone co*de* snake_case_name 2*3*4 a*b',
    'snake_case, 2*3*4 and an escaped * stay literal',
  );

  // A fenced block keeps its language and every space of its lines.
  const pre = bodies.nth(1).locator('pre');
  assert.equal(await pre.getAttribute('data-lang'), 'rust');
  assert.equal(await pre.locator('code').getAttribute('class'), 'language-rust');
  assert.equal(await pre.locator('code').textContent(), 'fn main() {\n    println!("hi");\n}');
  assert.equal(await pre.evaluate((el) => getComputedStyle(el).whiteSpace), 'pre');
  assert.equal(await bodies.nth(1).textContent(), 'fn main() {\n    println!("hi");\n}', 'the label is not part of the text');

  const quote = bodies.nth(2).locator(':scope > blockquote');
  assert.equal(await quote.locator(':scope > strong').textContent(), 'words');
  assert.equal(await quote.locator('blockquote').textContent(), 'deeper');
  assert.match(await bodies.nth(2).textContent(), /after$/);

  const ul = bodies.nth(3).locator(':scope > ul');
  assert.deepEqual(await ul.locator(':scope > li').evaluateAll((lis) => lis.map((li) => li.firstChild.textContent)), ['one', 'two']);
  assert.deepEqual(await ul.locator('ul > li').allTextContents(), ['nested']);
  assert.deepEqual(await bodies.nth(3).locator(':scope > ol > li').allTextContents(), ['first', 'second']);

  const anchors = await bodies.nth(4).locator('a').evaluateAll((as) =>
    as.map((a) => ({ text: a.textContent, href: a.getAttribute('href'), rel: a.rel, target: a.target })),
  );
  assert.deepEqual(anchors, [
    { text: 'the docs', href: 'https://example.com/docs_(v2)', rel: 'noopener noreferrer nofollow', target: '_blank' },
    { text: 'https://example.com/bare', href: 'https://example.com/bare', rel: 'noopener noreferrer nofollow', target: '_blank' },
    { text: 'ana@example.com', href: 'mailto:ana@example.com', rel: 'noopener noreferrer nofollow', target: '_blank' },
  ]);
  assert.match(await bodies.nth(4).textContent(), /\[bad\]\(javascript:alert\(1\)\)$/, 'a javascript: link stays literal text');

  // Editing starts from the source text; the saved source is what the server keeps.
  const mine = messageWith(page, 'also bold');
  await mine.hover();
  await mine.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Edit' }).click();
  const editor = page.getByRole('textbox', { name: 'Edit message' });
  assert.equal(await editor.inputValue(), inline);
  // Ctrl+B in the editor wraps the selection too.
  await editor.evaluate((box) => {
    box.value = 'now bold';
    box.setSelectionRange(4, 8);
  });
  await editor.press('Control+b');
  assert.equal(await editor.inputValue(), 'now **bold**');
  await editor.press('Enter');
  await editor.waitFor({ state: 'detached' });
  await messageWith(page, 'now bold').locator('strong', { hasText: 'bold' }).waitFor();
  const edited = await server.must(200, 'GET', `/rooms/${room.id}/messages`, { token: bob.token });
  assert.equal(edited.messages[0].body, 'now **bold**');

  // Copy text copies the source, marks and all.
  const block = messageWith(page, 'println');
  await block.hover();
  await block.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Copy text' }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), fenced);

  assert.deepEqual(await alice.trouble.problems(), []);
});

test('Ctrl+B and Ctrl+I format the selection in the message box, and "?" shows the syntax', async (t) => {
  const { server, room } = await twoInARoom(t);
  const { page, trouble } = await openRoom(server, room, 'alice');
  const box = page.getByLabel('Message', { exact: true });
  await box.fill('make this bold and this italic');
  await box.evaluate((el) => el.setSelectionRange(10, 14));
  await box.press('Control+b');
  assert.equal(await box.inputValue(), 'make this **bold** and this italic');
  // Pressed again on the wrapped selection, it unwraps.
  await box.press('Control+b');
  assert.equal(await box.inputValue(), 'make this bold and this italic');
  await box.press('Control+b');
  await box.evaluate((el) => el.setSelectionRange(el.value.length - 6, el.value.length));
  await box.press('Control+i');
  assert.equal(await box.inputValue(), 'make this **bold** and this _italic_');
  await box.press('Enter');
  const message = messageWith(page, 'make this');
  await message.locator('strong', { hasText: 'bold' }).waitFor();
  assert.equal(await message.locator('em').textContent(), 'italic');

  // The help opens from its button by keyboard and closes with Escape, focus back on the button.
  const help = page.getByRole('button', { name: 'Formatting help' });
  await help.focus();
  await page.keyboard.press('Enter');
  const popover = page.getByRole('dialog', { name: 'Formatting' });
  await popover.waitFor();
  assert.match(await popover.textContent(), /\*\*bold\*\*.*\[text\]\(https:\/\/…\)/s);
  await page.keyboard.press('Escape');
  await popover.waitFor({ state: 'hidden' });
  assert.deepEqual(await trouble.problems(), []);
});

test('mentions, reply quotes and search marks work inside formatted text', async (t) => {
  const { server, room, alice, bob } = await twoInARoom(t);
  const shout = await server.post(bob.token, room.id, '**hey @alice, look** at _this quokka_ `@alice` [notes](https://example.com/n)');
  assert.deepEqual(shout.mentions, [alice.user.id], 'the server finds the mention in the source');
  await server.must(201, 'POST', `/rooms/${room.id}/messages`, {
    token: bob.token,
    body: { body: 'answering', reply_to: shout.seq },
  });
  const { page, trouble } = await openRoom(server, room, 'alice');

  const message = messageWith(page, 'look');
  await message.waitFor();
  assert.equal(await message.evaluate((li) => li.classList.contains('mentions-me')), true, 'the message stands out');
  assert.equal(await message.locator('.message-body strong').textContent(), 'hey @alice, look');
  assert.deepEqual(
    await message.locator('.message-body .mention').allTextContents(),
    ['@alice'],
    'the name is marked inside the bold, and not inside code',
  );
  assert.equal(await message.locator('.message-body strong .mention').count(), 1);

  // The quote above the reply shows the formatting inline, with no markers.
  const excerpt = page.locator('#messages .reply-excerpt');
  assert.equal(await excerpt.textContent(), 'hey @alice, look at this quokka @alice notes', 'a link shows as its text');
  assert.equal(await excerpt.locator('a').count(), 0);
  assert.equal(await excerpt.locator('strong').textContent(), 'hey @alice, look');

  // A search hit marks the word inside the formatting.
  await page.keyboard.press('Control+Shift+F');
  const input = page.getByLabel('Search for');
  await input.fill('quokka');
  await eventually(
    async () => {
      await input.press('Enter');
      return page
        .locator('#search-results .search-hit')
        .first()
        .waitFor({ timeout: 1500 })
        .then(() => true, () => false);
    },
    { timeout: 15_000, interval: 200, message: 'a hit for quokka' },
  );
  const hit = page.locator('#search-results .search-hit-body').first();
  assert.equal(await hit.locator('em mark').textContent(), 'quokka');
  assert.equal(await hit.textContent(), 'hey @alice, look at this quokka @alice notes');
  assert.equal(await hit.locator('a').count(), 0, 'no link inside the hit, itself a link');
  assert.deepEqual(await trouble.problems(), []);
});

test('at 390 px a long code line scrolls inside its block and the page does not widen', async (t) => {
  const { server, room, bob } = await twoInARoom(t);
  const longLine = `const value = ${'"a_long_string_that_does_not_wrap" + '.repeat(12)}1;`;
  await server.post(bob.token, room.id, `\`\`\`js\n${longLine}\n\`\`\``);
  await server.post(bob.token, room.id, `inline \`${'x'.repeat(300)}\` code wraps`);
  const { page, trouble } = await openRoom(server, room, 'alice', PHONE);
  const pre = page.locator('#messages pre');
  await pre.waitFor();
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390, 'the page is as wide as the phone');
  const box = await pre.evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth, right: el.getBoundingClientRect().right }));
  assert.ok(box.scroll > box.client, 'the line is longer than the block');
  assert.ok(box.right <= 390, `the block ends inside the screen, at ${box.right}`);
  const scrolled = await pre.evaluate((el) => {
    el.scrollLeft = 200;
    return el.scrollLeft;
  });
  assert.ok(scrolled > 0, 'the block scrolls sideways');
  assert.equal(await pre.locator('code').textContent(), longLine);
  assert.deepEqual(await trouble.problems(), []);
});

test('a page of a hundred formatted messages and crafted bodies render quickly', async (t) => {
  const { server, room, bob } = await twoInARoom(t, FAST_SENDS);
  // Crafted bodies at the 4000-character limit, through the real server.
  const crafted = [
    '*'.repeat(4000),
    '['.repeat(4000),
    '>'.repeat(4000),
    '*a '.repeat(666) + 'a* '.repeat(666),
    '[a]('.repeat(1000),
    '` '.repeat(2000),
    '_a'.repeat(2000),
    Array.from({ length: 400 }, (_, i) => `${'>'.repeat(i % 40)} x`).join('\n').slice(0, 4000),
  ];
  const kinds = ['**bold** and *em*', '`code` ~~old~~', '> quote\nline', '- a\n- b\n  - c', '```py\nprint(1)\n```', '[link](https://example.com) https://example.org'];
  const bodies = Array.from({ length: 100 }, (_, i) => `${kinds[i % kinds.length]} #${i}`);
  for (const body of bodies) await server.post(bob.token, room.id, body);
  // The crafted ones last, so they are in the first page the room opens on.
  for (const body of crafted) await server.post(bob.token, room.id, body);

  const { page, trouble } = await openRoom(server, room, 'alice');
  await page.locator('#messages li[data-seq]').nth(49).waitFor();
  assert.ok((await page.locator('#messages pre[data-lang="py"]').count()) > 0);
  const shown = await page.locator('#messages li[data-seq] .message-body').allTextContents();
  for (const body of crafted.slice(0, 2)) assert.ok(shown.includes(body), 'a crafted body shows as its text');
  // Quotes nest four deep; the rest of the `>` are text.
  assert.ok(shown.includes('>'.repeat(3996)), 'deep quotes stop nesting');

  // The renderer itself, timed in the page: a guard against anything
  // quadratic or worse, not a benchmark, so the bounds are generous.
  const timings = await page.evaluate(async (page100) => {
    const { renderBody } = await import('/js/markdown.js');
    // The best of three: a busy machine or a collection adds to one run,
    // while a quadratic blow-up shows in every run.
    const time = (body, options) => {
      let best = Infinity;
      for (let run = 0; run < 3; run += 1) {
        const box = document.createElement('div');
        const start = performance.now();
        renderBody(box, body, options);
        best = Math.min(best, performance.now() - start);
      }
      return best;
    };
    const pathological = {
      stars: '*'.repeat(10_000),
      brackets: '['.repeat(5_000),
      quotes: '>'.repeat(10_000),
      quoteLines: '> '.repeat(5_000),
      nested: '*a '.repeat(1_666) + 'a* '.repeat(1_666),
      links: '[a]('.repeat(2_500),
      parens: `[a](http://x${'('.repeat(10_000)}`,
      ticks: '` '.repeat(5_000),
      fences: '```\n'.repeat(2_500),
      underscores: '_a'.repeat(5_000),
      emails: 'a.'.repeat(5_000),
      urls: 'http://'.repeat(1_500),
      badUrls: 'http://['.repeat(1_250),
      mentions: '@alice'.repeat(1_600),
    };
    const result = {};
    for (const [name, body] of Object.entries(pathological)) {
      result[name] = Math.max(time(body, { mentions: ['alice'] }), time(body, { inline: true, marks: [[0, 3]] }));
    }
    const start = performance.now();
    for (const body of page100) renderBody(document.createElement('div'), body);
    result.hundred = performance.now() - start;
    return result;
  }, bodies);
  for (const [name, ms] of Object.entries(timings)) assert.ok(ms < 200, `${name} took ${ms.toFixed(1)} ms`);
  assert.deepEqual(await trouble.problems(), []);
});
