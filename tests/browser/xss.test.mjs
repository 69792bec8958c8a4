// Hostile text everywhere a person can type: messages, room names and
// topics (public and private, in the header and the room's details), usernames, the user agents in the sessions list, invite links. Every payload must render as the exact text typed, run
// nothing (a `window.__pwned` canary stays false, no dialog opens) and trip
// no CSP violation; only http(s) URLs become links. Over a hundred more try to
// smuggle markup or a `javascript:` link through message formatting: they may
// only ever become the formatting elements, links only to http, https or mailto.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PASSWORD, TestServer, eventually, launchBrowser, logInInUi, openPerson } from './harness.mjs';

const PAYLOADS = [
  '<img src=x onerror=alert(1)>',
  '<img src=x onerror="window.__pwned=true">',
  '<script>window.__pwned=true</script>',
  '<script src="/evil.js"></script>',
  '"><svg onload=alert(1)>',
  "'><svg/onload=window.__pwned=true>",
  '<svg><script>window.__pwned=true</script></svg>',
  'javascript:alert(1)',
  '[click](javascript:alert(1))',
  '<a href="javascript:alert(1)">click me</a>',
  'JaVaScRiPt:window.__pwned=true//https://example.com',
  '<iframe src="javascript:alert(1)"></iframe>',
  '<iframe srcdoc="<script>parent.__pwned=true</script>">',
  '<body onload=alert(1)>',
  '<details open ontoggle=alert(1)>',
  '<input autofocus onfocus=alert(1)>',
  '<video><source onerror=alert(1)></video>',
  '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  '<style>*{display:none}</style>',
  '<div style="background:url(javascript:alert(1))">x</div>',
  '<object data="javascript:alert(1)"></object>',
  '<embed src="javascript:alert(1)">',
  '<form action="javascript:alert(1)"><button>go</button></form>',
  '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
  '<base href="javascript:alert(1)//">',
  '{{constructor.constructor("alert(1)")()}}',
  '${alert(1)}',
  '&lt;img src=x onerror=alert(1)&gt;',
  'https://example.com/"><img src=x onerror=alert(1)>',
  'data:text/html,<script>alert(1)</script>',
];

// Formatting and link smuggling: every one is sent as a message and must show
// inert, with only the formatting elements markdown.js makes, and links only to
// http, https and mailto.
const FORMATTING_PAYLOADS = [
  // `javascript:` in a link, spelt every way a browser might still follow.
  '[x](javascript:alert(1))',
  '[x](JAVASCRIPT:alert(1))',
  '[x](JaVaScRiPt:window.__pwned=true)',
  '[x](java\tscript:alert(1))',
  '[x](java\nscript:alert(1))',
  '[x]( javascript:alert(1))',
  '[x](\tjavascript:alert(1))',
  '[x](%20javascript:alert(1))',
  '[x](javascript&#58;alert(1))',
  '[x](javascript&colon;alert(1))',
  '[x](&#106;avascript:alert(1))',
  '[x](&#x6A;avascript:alert(1))',
  '[x](&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1))',
  '[x](javascript%3Aalert(1))',
  '[x](javascript://%0aalert(1))',
  '[x](javascript://example.com/%0Aalert(1))',
  '[x](javascript:alert(1)//https://ok.example)',
  '[x](javascript:alert(1) "title")',
  '[x](<javascript:alert(1)>)',
  '[x](\\javascript:alert(1))',
  '[x](javascript\\:alert(1))',
  '[x](java script:alert(1))',
  '[x](jav&#x09;ascript:alert(1))',
  '[x](java\u200Bscript:alert(1))',
  '[x](ja\u200Dvascript:alert(1))',
  '[x](\uFEFFjavascript:alert(1))',
  '[x](java\u00ADscript:alert(1))',
  '[x](\u2028javascript:alert(1))',
  '[x](ｊａｖａｓｃｒｉｐｔ:alert(1))',
  '[x](javascript:/*--></title></style></textarea></script><svg/onload=alert(1)>)',
  // Other schemes and places that are not http(s) or mailto.
  '[x](vbscript:msgbox(1))',
  '[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '[x](data:text/html,<script>alert(1)</script>)',
  '[x](//evil.example/x)',
  '[x](/relative/path)',
  '[x](file:///etc/passwd)',
  '[x](blob:https://ok.example/0000)',
  '[x](ftp://ok.example/)',
  '[x](about:blank)',
  '[x](https:javascript:alert(1))',
  '[x](http://javascript:alert(1))',
  '[x](ｈｔｔｐｓ://ok.example)',
  '![img](javascript:alert(1))',
  '[x]: javascript:alert(1)\n\n[x]',
  // Nested and unbalanced brackets and parentheses.
  '[a](javascript:x)(http://ok.example)',
  '[[x](javascript:alert(1))](https://ok.example)',
  '[[x](https://ok.example)](javascript:alert(1))',
  '[x](https://ok.example)(javascript:alert(1))',
  '[[[[[[x](javascript:alert(1))]]]]]',
  '[x](https://ok.example/((javascript:alert(1))',
  '[x](https://en.wikipedia.org/wiki/Fire_(element)) [y](javascript:alert(1)))',
  '\\[x\\](javascript:alert(1))',
  '[x](javascript:alert(1)\\)',
  '[x](javascript:alert(1))[y](https://ok.example)',
  `${'['.repeat(300)}x](javascript:alert(1))`,
  // Attributes smuggled through a URL or a link's text.
  '[x](https://ok.example" onmouseover="alert(1))',
  '[x](https://ok.example/"onmouseover="alert(1))',
  "[x](https://ok.example/'><script>alert(1)</script>)",
  '[<img src=x onerror=alert(1)>](https://ok.example)',
  '[**<svg onload=alert(1)>**](https://ok.example)',
  '[`<script>window.__pwned=true</script>`](https://ok.example)',
  '[x](https://ok.example)<script>window.__pwned=true</script>',
  '**[x](javascript:alert(1))**',
  '[mail](mailto:javascript:alert(1))',
  // Markup inside formatting, code spans and fenced blocks.
  '`<img src=x onerror=alert(1)>`',
  '`<script>window.__pwned=true</script>`',
  '```html\n<script>window.__pwned=true</script>\n<img src=x onerror=alert(1)>\n```',
  '```<script>alert(1)</script>\ncode\n```',
  '```" onmouseover="alert(1)\ncode\n```',
  '```js onload=alert(1)\nx\n```',
  '```js" style="display:none\nx\n```',
  '~~~javascript:alert(1)\nx\n~~~',
  '```\nunclosed <svg onload=alert(1)>',
  '```css\n</style><script>window.__pwned=true</script>\n```',
  '> <img src=x onerror=alert(1)>\n> > <svg onload=alert(1)>',
  '- <script>window.__pwned=true</script>\n  - <img src=x onerror=alert(1)>',
  '1. [x](javascript:alert(1))\n2. **<b>bold</b>**',
  '**<img src=x onerror=alert(1)>**',
  '*<svg onload=alert(1)>*',
  '~~<iframe src=javascript:alert(1)>~~',
  '__<style>*{display:none}</style>__',
  '_<a href=javascript:alert(1)>x</a>_',
  '\\<script\\>window.__pwned=true\\</script\\>',
  '&#60;script&#62;window.__pwned=true&#60;/script&#62;',
  '<!-- [x](javascript:alert(1)) -->',
  `${'*'.repeat(500)}<img src=x onerror=alert(1)>`,
  `${'>'.repeat(300)} <svg onload=alert(1)>`,
  // Bare URLs and addresses.
  'javascript:alert(1)//http://ok.example',
  'https://ok.example/<script>alert(1)</script>',
  'https://ok.example/"onmouseover="alert(1)',
  "https://ok.example/'onmouseover='alert(1)",
  'http://javascript:alert(1)',
  'https://ok.example/javascript:alert(1)',
  'hxxp://evil.example https:// http://',
  '<https://ok.example>',
  'https://ok.example)](javascript:alert(1))',
  '**https://ok.example/**bold**',
  'user@example.com"><script>alert(1)</script>',
  'javascript:alert(1)@example.com',
  'mailto:javascript:alert(1)',
  'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
  'https://ok.example/?q=<img src=x onerror=alert(1)>',
  // Direction and look-alike tricks.
  '\u202E[x](https://ok.example)\u202C gnp.exe',
  '[https://ok.example](https://evil.example)',
  // Styles: there is no way to set one.
  '<div style="position:fixed;inset:0;background:red">x</div>',
  '[x](https://ok.example){: style="color:red" onclick="alert(1)"}',
  '`style="background:url(javascript:alert(1))"`',
  "<style>@import 'https://evil.example/x.css';</style>",
];

/** What markdown.js may put in a body: element → the attributes it may carry. */
const FORMATTING_ELEMENTS = {
  strong: [],
  em: [],
  del: [],
  code: ['class'],
  pre: ['data-lang'],
  blockquote: [],
  ul: [],
  ol: ['start'],
  li: [],
  a: ['href', 'title', 'target', 'rel'],
  mark: [],
  span: ['class'],
};

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test('the server sends the strict CSP with the page', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const response = await fetch(`${server.url}/`);
  assert.equal(response.status, 200);
  const csp = response.headers.get('content-security-policy') ?? '';
  const directives = [
    "default-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    `ws://127.0.0.1:${server.port}`, // connect-src must allow the page's own socket
  ];
  for (const directive of directives) {
    assert.ok(csp.includes(directive), `CSP "${csp}" lacks ${directive}`);
  }
  // Formatting needs nothing looser: the policy is exactly this, with no
  // 'unsafe-inline', no eval and no script or style source of its own (the
  // service worker and the manifest come from this origin only).
  assert.equal(
    csp,
    `default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'; img-src 'self' data:; connect-src 'self' ws://127.0.0.1:${server.port}; worker-src 'self'; manifest-src 'self'`,
  );
  assert.doesNotMatch(csp, /unsafe|script-src|style-src/);
});

test('thirty XSS payloads render as inert text', async (t) => {
  assert.equal(PAYLOADS.length, 30);
  const server = await TestServer.start();
  t.after(() => server.stop());

  // Usernames: the server refuses markup outright, and says so as text.
  for (const payload of PAYLOADS.slice(0, 6)) {
    const reply = await server.api('POST', '/signup', {
      body: { username: payload, email: 'x@example.test', password: PASSWORD },
    });
    assert.equal(reply.status, 400, `username ${payload} was accepted`);
    assert.equal(reply.body.error.code, 'invalid_username');
  }

  const { token } = await server.createUser('mallory');
  // Room names and topics (names are at most 64 characters, all payloads fit).
  const roomIds = [];
  for (const payload of PAYLOADS.filter((p) => p.length <= 64).slice(0, 12)) {
    const { room } = await server.must(201, 'POST', '/rooms', { token, body: { name: payload, topic: payload } });
    roomIds.push(room.id);
  }
  const { room } = await server.must(201, 'POST', '/rooms', { token, body: { name: 'payloads' } });
  for (const payload of PAYLOADS) await server.post(token, room.id, payload);
  // Rooms the viewer has not joined show in "Other rooms" with their topic.
  const other = await server.createUser('other');
  for (const payload of PAYLOADS.slice(12, 20)) {
    await server.must(201, 'POST', '/rooms', { token: other.token, body: { name: `x${payload}`, topic: payload } });
  }
  // Private rooms (a lock beside their names) and a direct room, named by its people.
  const hidden = PAYLOADS.filter((p) => p.length <= 64).slice(12, 16);
  const hiddenIds = [];
  for (const payload of hidden) {
    const { room: made } = await server.must(201, 'POST', '/rooms', {
      token,
      body: { name: payload, topic: payload, visibility: 'private' },
    });
    hiddenIds.push(made.id);
  }
  await server.must(200, 'POST', '/dms', { token, body: { users: [other.user.id] } });

  const { page, trouble } = await openPerson(browser);
  // A failed signup with a hostile username shows the error as text.
  await page.goto(server.url);
  await page.getByRole('button', { name: 'Create an account' }).click();
  const signup = page.locator('#signup-form');
  await signup.getByLabel('Username', { exact: true }).fill(PAYLOADS[0]);
  await signup.getByLabel('Email').fill('evil@example.test');
  await signup.getByLabel('Password').fill(PASSWORD);
  await signup.getByRole('button', { name: 'Sign up' }).click();
  await page.locator('#signup-username-error').waitFor();

  await logInInUi(page, server, 'mallory');
  await page.goto(`${server.url}/#/room/${encodeURIComponent(room.id)}`);
  await page.locator('#room-title', { hasText: 'payloads' }).waitFor();
  await page.locator('#messages li[data-seq]').nth(PAYLOADS.length - 1).waitFor();

  const bodies = await page.locator('#messages li[data-seq] .message-body').allTextContents();
  assert.deepEqual(bodies, PAYLOADS, 'each payload shows as the exact text typed');

  // Open every hostile room too, so names and topics reach the header.
  for (const id of roomIds) {
    await page.goto(`${server.url}/#/room/${encodeURIComponent(id)}`);
    await page.locator('#composer').waitFor();
  }
  await page.getByRole('button', { name: 'Refresh room list' }).click();
  const roomNames = await page.locator('#my-rooms .room-name').allTextContents();
  for (const payload of PAYLOADS.filter((p) => p.length <= 64).slice(0, 12)) {
    assert.ok(roomNames.includes(payload), `room named ${payload} is listed as text`);
  }
  for (const payload of hidden) assert.ok(roomNames.includes(payload), `private room named ${payload} is listed as text`);
  assert.deepEqual(await page.locator('#dm-list .room-name').allTextContents(), ['other']);
  // A private room's header, and its name in the Add people dialog.
  await page.goto(`${server.url}/#/room/${encodeURIComponent(hiddenIds[0])}`);
  await page.locator('#room-title .lock').waitFor();
  assert.equal(await page.locator('#room-info').textContent(), hidden[0]);
  await page.getByRole('button', { name: 'Add people' }).click();
  assert.equal(await page.locator('#people-title').textContent(), `Add people to ${hidden[0]}`);
  await page.keyboard.press('Escape');
  // Its details, the settings form and a confirmation name it as text too.
  await server.must(200, 'POST', `/rooms/${hiddenIds[0]}/members`, { token, body: { user: other.user.id } });
  await page.locator('#room-info').click();
  const details = page.locator('#members-dialog');
  await details.getByRole('button', { name: 'Manage other' }).click();
  await details.getByRole('button', { name: 'Edit name and topic' }).click();
  assert.equal(await page.locator('#members-title').textContent(), hidden[0]);
  assert.equal(await page.locator('#members-topic').textContent(), hidden[0]);
  assert.equal(await page.locator('#settings-name').inputValue(), hidden[0]);
  assert.equal(await page.locator('#settings-topic').inputValue(), hidden[0]);
  await details.getByRole('group', { name: 'Actions for other' }).getByRole('button', { name: 'Ban' }).click();
  assert.equal(await page.locator('#confirm-title').textContent(), `Ban other from ${hidden[0]}?`);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await details.waitFor({ state: 'hidden' });
  const otherTopics = await page.locator('#other-rooms .room-meta').allTextContents();
  assert.equal(otherTopics.filter((text) => PAYLOADS.some((p) => text.startsWith(p))).length, 8);

  // Nothing ran, nothing was injected, nothing tripped the CSP.
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.__pwned), false, 'the canary was touched');
  const injected = await page.evaluate(() =>
    [...document.querySelectorAll('#messages *, #my-rooms *, #dm-list *, #other-rooms *, #room-title *, #room-topic *, #people-title *, #members-title *, #members-topic *, #members-list *, #confirm-title *')]
      // The private rooms' lock is drawn by the page, not by user text.
      .filter((el) => !el.closest('.lock'))
      .map((el) => el.tagName.toLowerCase())
      .filter((tag) => !['li', 'span', 'div', 'p', 'time', 'a', 'button'].includes(tag)),
  );
  assert.deepEqual(injected, [], 'no element came from user text');
  const hrefs = await page.locator('#messages a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
  for (const href of hrefs) assert.match(href, /^https?:\/\//, `only http(s) links, got ${href}`);
  assert.deepEqual(await trouble.problems(), []);
});

test('over a hundred formatting and link-smuggling payloads render inert, as whitelisted formatting only', async (t) => {
  assert.ok(FORMATTING_PAYLOADS.length >= 100, `only ${FORMATTING_PAYLOADS.length} payloads`);
  const server = await TestServer.start({ HEARTH_SEND_BURST: '1000', HEARTH_SEND_PER_SEC: '1000' });
  t.after(() => server.stop());
  const { token } = await server.createUser('mallory');
  const viewer = await server.createUser('viewer');
  // Thirty to a room (one page of history), each replying to the one before,
  // so every payload also shows in a reply quote.
  const rooms = [];
  for (let at = 0; at < FORMATTING_PAYLOADS.length; at += 30) {
    const payloads = FORMATTING_PAYLOADS.slice(at, at + 30);
    const { room } = await server.must(201, 'POST', '/rooms', { token, body: { name: `smuggling ${at}` } });
    await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: viewer.token });
    let previous = null;
    for (const body of payloads) {
      const { message } = await server.must(201, 'POST', `/rooms/${room.id}/messages`, {
        token,
        body: previous ? { body, reply_to: previous } : { body },
      });
      previous = message.seq;
    }
    // The API keeps and returns the source text, byte for byte.
    const { messages } = await server.must(200, 'GET', `/rooms/${room.id}/messages?limit=50`, { token });
    assert.deepEqual(
      messages.map((m) => m.body),
      payloads,
    );
    rooms.push({ id: room.id, payloads });
  }

  const { page, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'viewer');
  const links = [];
  for (const room of rooms) {
    await page.goto(`${server.url}/#/room/${encodeURIComponent(room.id)}`);
    await page.locator('#messages li[data-seq]').nth(room.payloads.length - 1).waitFor();
    assert.equal(await page.locator('#messages li[data-seq] .message-body').count(), room.payloads.length);
    const found = await page.evaluate((allowed) => {
      const foreign = [];
      for (const el of document.querySelectorAll('#messages :is(.message-body, .reply-excerpt) *')) {
        const tag = el.tagName.toLowerCase();
        if (!Object.hasOwn(allowed, tag)) foreign.push(tag);
        else for (const { name } of el.attributes) if (!allowed[tag].includes(name)) foreign.push(`${tag}[${name}]`);
      }
      const languages = [...document.querySelectorAll('#messages pre[data-lang]')].map((pre) => pre.dataset.lang);
      const anchors = [...document.querySelectorAll('#messages .message-body a')].map((a) => ({
        href: a.getAttribute('href'),
        rel: a.rel,
        target: a.target,
        title: a.title,
        text: a.textContent,
      }));
      const quoteLinks = document.querySelectorAll('#messages .reply-excerpt a').length;
      return { foreign, languages, anchors, quoteLinks };
    }, FORMATTING_ELEMENTS);
    assert.deepEqual(found.foreign, [], 'only formatting elements, with only their own attributes');
    for (const lang of found.languages) assert.match(lang, /^[\w+#.-]{1,32}$/, `language ${lang}`);
    assert.equal(found.quoteLinks, 0, 'a reply quote is a button and holds no link');
    links.push(...found.anchors);
  }
  for (const link of links) {
    // The attribute itself is absolute: nothing relative, nothing the page resolves.
    assert.ok(['http:', 'https:', 'mailto:'].includes(new URL(link.href).protocol), `link to ${link.href}`);
    assert.equal(link.rel, 'noopener noreferrer nofollow');
    assert.equal(link.target, '_blank');
  }
  // Real links were made, so the checks above had something to check.
  const hrefs = links.map((link) => link.href);
  assert.ok(hrefs.includes('https://ok.example/'), 'a [x](https://…) link');
  assert.ok(hrefs.includes('https://en.wikipedia.org/wiki/Fire_(element)'), 'a URL with balanced parentheses');
  assert.ok(hrefs.includes('mailto:javascript:alert(1)'), 'a mailto link is only ever a mail link');
  assert.ok(!hrefs.some((href) => /^\s*j\s*a\s*v\s*a/i.test(href)), 'no javascript: in any spelling');
  // A link whose text looks like another address says on hover where it goes.
  const lookalike = links.find((link) => link.href === 'https://evil.example/');
  assert.equal(lookalike?.text, 'https://ok.example');
  assert.equal(lookalike.title, 'https://evil.example/');

  // Search hits show the same bodies, inline only and without links of their own.
  await page.keyboard.press('Control+Shift+F');
  const input = page.getByLabel('Search for');
  await input.fill('alert');
  await eventually(
    async () => {
      await input.press('Enter');
      return page
        .locator('#search-results .search-hit')
        .nth(9)
        .waitFor({ timeout: 1500 })
        .then(() => true, () => false);
    },
    { timeout: 15_000, interval: 200, message: 'search hits for alert' },
  );
  const hitTags = await page
    .locator('#search-results .search-hit-body *')
    .evaluateAll((els) => els.map((el) => el.tagName.toLowerCase()));
  for (const tag of hitTags) assert.ok(['strong', 'em', 'del', 'code', 'mark'].includes(tag), `search hit holds ${tag}`);
  assert.ok(hitTags.includes('mark'), 'the matched word is marked');

  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.__pwned), false, 'the canary was touched');
  assert.deepEqual(await trouble.problems(), []);
});

test('edited bodies, edit history, reply quotes and reactions keep hostile text inert', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  const { token } = await server.createUser('mallory');
  const { room } = await server.must(201, 'POST', '/rooms', { token, body: { name: 'edits' } });
  const edited = await server.post(token, room.id, 'harmless at first');
  for (const body of PAYLOADS.slice(0, 10)) {
    await server.must(200, 'PATCH', `/rooms/${room.id}/messages/${edited.seq}`, { token, body: { body } });
  }
  for (const body of PAYLOADS.slice(10, 20)) {
    const quoted = await server.post(token, room.id, body);
    await server.must(201, 'POST', `/rooms/${room.id}/messages`, { token, body: { body: 'a reply', reply_to: quoted.seq } });
  }
  // Markup is no emoji: refused, so it never reaches a chip.
  for (const emoji of PAYLOADS.slice(0, 5)) {
    const reply = await server.api('PUT', `/rooms/${room.id}/messages/${edited.seq}/reactions/${encodeURIComponent(emoji)}`, {
      token,
    });
    assert.equal(reply.status, 400, `reaction ${emoji} was accepted`);
  }
  await server.must(204, 'PUT', `/rooms/${room.id}/messages/${edited.seq}/reactions/${encodeURIComponent('🔥')}`, { token });
  const viewer = await server.createUser('viewer');
  await server.must(200, 'POST', `/rooms/${room.id}/join`, { token: viewer.token });

  const { page, trouble } = await openPerson(browser);
  await logInInUi(page, server, 'viewer');
  await page.goto(`${server.url}/#/room/${encodeURIComponent(room.id)}`);
  await page.locator('#messages li[data-seq]').nth(20).waitFor();
  const first = page.locator(`#messages li[data-seq="${edited.seq}"]`);
  assert.equal(await first.locator('.message-body').textContent(), PAYLOADS[9]);
  assert.deepEqual(await page.locator('#messages .reply-excerpt').allTextContents(), PAYLOADS.slice(10, 20));

  await first.getByRole('button', { name: /^Edited/ }).click();
  const history = page.getByRole('dialog', { name: 'Edit history' });
  await history.locator('li').nth(10).waitFor();
  assert.deepEqual(await history.locator('.edit-body').allTextContents(), ['harmless at first', ...PAYLOADS.slice(0, 10)]);
  await page.keyboard.press('Escape');

  // Replying to a hostile message puts it in the message box's bar as text.
  const hostile = page.locator('#messages li[data-seq]', { hasText: PAYLOADS[12] }).first();
  await hostile.hover();
  await hostile.getByRole('button', { name: 'Message actions' }).click();
  await page.getByRole('menuitem', { name: 'Reply' }).click();
  assert.equal(await page.locator('#reply-text').textContent(), `Replying to mallory: ${PAYLOADS[12]}`);

  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.__pwned), false, 'the canary was touched');
  const injected = await page.evaluate(() =>
    [...document.querySelectorAll('#messages *, #edit-history *, #reply-bar *')]
      .map((el) => el.tagName.toLowerCase())
      .filter((tag) => !['li', 'span', 'div', 'p', 'time', 'a', 'button', 'ol', 'strong', 'svg', 'path', 'circle'].includes(tag)),
  );
  assert.deepEqual(injected, [], 'no element came from user text');
  assert.deepEqual(await trouble.problems(), []);
});

test('hostile user agents in the sessions list and a hostile invite link stay inert text', async (t) => {
  const server = await TestServer.start();
  t.after(() => server.stop());
  await server.createUser('watched');
  // A session's user agent is whatever the client said when it logged in.
  for (const payload of PAYLOADS) {
    await server.must(200, 'POST', '/login', {
      body: { login: 'watched', password: PASSWORD },
      headers: { 'User-Agent': payload },
    });
  }
  const { page, trouble } = await openPerson(browser);

  // An invite link is a URL anyone can craft: its code is only ever a field's value.
  for (const payload of PAYLOADS.slice(0, 10)) {
    await page.goto(`${server.url}/?invite=${encodeURIComponent(payload)}`);
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();
    assert.equal(await page.locator('#signup-invite').inputValue(), payload.trim());
  }

  await logInInUi(page, server, 'watched');
  await page.getByRole('button', { name: 'Account settings' }).click();
  const dialog = page.getByRole('dialog', { name: 'Account' });
  await dialog.waitFor();
  const sessions = dialog.locator('#sessions-list li');
  await sessions.nth(PAYLOADS.length + 1).waitFor();
  const agents = await sessions.locator('.session-name').evaluateAll((names) => names.map((n) => n.title));
  for (const payload of PAYLOADS) assert.ok(agents.includes(payload), `user agent ${payload} not shown as text`);
  const foreign = await dialog.locator('#sessions-list').locator('img, script, svg, iframe, object, embed, video, math, style, a, form, input').count();
  assert.equal(foreign, 0, 'a user agent became markup');
  assert.equal(await page.evaluate(() => window.__pwned), false, 'the canary was touched');
  assert.deepEqual(await trouble.problems(), []);
});
