// Browser tests of the web client in Chromium against a real `parley dev`
// (see harness.mjs). Run by `make test-web`; screenshots go to
// test-results/screenshots. Without a browser the tests are skipped, except
// under CI=true, where that is a failure.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import {
  DESKTOP, PHONE, Server, chromiumPath, handle, launch, loginUI, openPage, registerUI, roomItem, say, screenshot, sendBulk, sleep, texts,
} from './harness.mjs';

const skip = !existsSync(chromiumPath) && process.env.CI !== 'true' && `no browser at ${chromiumPath} (under CI=true this fails)`;

let server;
let browser;

before(async () => {
  if (skip) return;
  server = await new Server().init();
  await server.start();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Waits until the open chat shows exactly want, failing with what it shows. */
async function waitForTexts(page, want, timeout = 15_000) {
  const end = Date.now() + timeout;
  let got;
  while (Date.now() < end) {
    got = await texts(page);
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    await sleep(100);
  }
  assert.deepEqual(got, want, 'messages shown');
}

const message = (page, text) => page.locator('#messages .msg', { hasText: text });

// actOn hovers a message and clicks one of its actions.
async function actOn(page, text, action) {
  const m = message(page, text);
  await m.locator('.bubble').hover();
  await m.getByRole('button', { name: action, exact: true }).click();
}

// contrastOnBubble (run in the page) is the WCAG contrast ratio of an
// element's text colour, its opacity and its ancestors' applied, against its
// bubble's background.
function contrastOnBubble(el) {
  const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
  const bubble = el.closest('.bubble');
  let alpha = 1;
  for (let e = el; e !== bubble.parentElement; e = e.parentElement) alpha *= Number(getComputedStyle(e).opacity);
  const bg = rgb(getComputedStyle(bubble).backgroundColor);
  const fg = rgb(getComputedStyle(el).color).map((c, i) => c * alpha + bg[i] * (1 - alpha));
  const lum = (c) => {
    const [r, g, b] = c.map((v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const noProblems = (...pages) => {
  for (const p of pages) assert.deepEqual(p.problems, [], 'page errors');
};

test('two users register, become friends and chat live: typing, replies, reactions, edits, deletes, receipts', { skip }, async () => {
  const annH = handle('ann');
  const bobH = handle('bob');
  const ann = await openPage(browser, server);
  const bob = await openPage(browser, server);
  await screenshot(ann, 'login');
  await registerUI(ann, annH, 'Ann Lee');
  await registerUI(bob, bobH, 'Bob Stone');

  // Ann finds Bob and asks him to be friends; Bob accepts.
  await ann.click('#tab-friends');
  await ann.fill('#search', bobH);
  await ann.locator('#search-results .person', { hasText: 'Bob Stone' }).getByRole('button', { name: 'Add friend' }).click();
  await ann.locator('#outgoing .person', { hasText: 'Bob Stone' }).waitFor();
  await bob.click('#tab-friends');
  await bob.locator('#incoming .person', { hasText: 'Ann Lee' }).getByRole('button', { name: 'Accept' }).click();
  await bob.locator('#friends .person', { hasText: 'Ann Lee' }).waitFor();
  await ann.click('#tab-chats');
  await ann.click('#tab-friends');
  await ann.locator('#friends .person', { hasText: 'Bob Stone' }).getByRole('button', { name: 'Message' }).click();
  await ann.locator('#composer').waitFor();
  await say(ann, 'Hi Bob!');
  await bob.locator('#friends .person', { hasText: 'Ann Lee' }).getByRole('button', { name: 'Message' }).click();
  await waitForTexts(bob, ['Hi Bob!']);

  // Typing shows live, and stops with the message.
  await bob.fill('#input', 'Hello Ann');
  await ann.locator('#typing', { hasText: 'Bob Stone is typing…' }).waitFor();
  await bob.fill('#input', 'Hello Ann, how are you?');
  await bob.press('#input', 'Enter');
  await waitForTexts(ann, ['Hi Bob!', 'Hello Ann, how are you?']);
  await ann.locator('#typing:empty').waitFor();

  // Reply, react, edit and delete; the other side sees each.
  await actOn(ann, 'Hello Ann, how are you?', 'Reply');
  await ann.locator('#context', { hasText: 'Replying to Bob Stone' }).waitFor();
  await say(ann, 'Great, thanks! Coffee later?');
  await message(bob, 'Coffee later?').locator('.quote', { hasText: 'Hello Ann, how are you?' }).waitFor();
  await actOn(bob, 'Hi Bob!', 'React');
  await message(bob, 'Hi Bob!').getByRole('button', { name: 'React 👍' }).click();
  await message(ann, 'Hi Bob!').locator('.reaction', { hasText: '👍1' }).waitFor();
  await actOn(bob, 'Coffee later?', 'React');
  await message(bob, 'Coffee later?').getByRole('button', { name: 'React 🎉' }).click();
  await actOn(ann, 'Hi Bob!', 'Edit');
  await ann.fill('#input', 'Hi Bob! 👋');
  await ann.press('#input', 'Enter');
  await message(bob, 'Hi Bob! 👋').locator('.edited').waitFor();
  await say(ann, 'wrong chat, sorry');
  await message(bob, 'wrong chat, sorry').waitFor();
  ann.once('dialog', (d) => d.accept());
  await actOn(ann, 'wrong chat, sorry', 'Delete');
  await bob.locator('#messages .msg.deleted', { hasText: 'This message was deleted.' }).waitFor();
  await say(bob, 'Sure, 4pm at the corner place ☕ https://maps.example.com/corner');
  await waitForTexts(ann, ['Hi Bob! 👋', 'Hello Ann, how are you?', 'Great, thanks! Coffee later?', 'This message was deleted.', 'Sure, 4pm at the corner place ☕ https://maps.example.com/corner']);

  // Bob has the chat open: Ann's messages show as read.
  await message(ann, 'Coffee later?').locator('.tick.read').waitFor();
  // Sent and read ticks stand out from the sender's bubble (WCAG AA: 4.5:1).
  const ratios = await message(ann, 'Coffee later?').locator('.tick.read').evaluate((el, fn) => {
    const contrast = new Function('return ' + fn)();
    const read = contrast(el);
    el.classList.remove('read'); // as shown until the other side reads it
    const sent = contrast(el);
    el.classList.add('read');
    return { read, sent };
  }, contrastOnBubble.toString());
  for (const [tick, ratio] of Object.entries(ratios)) assert.ok(ratio >= 4.5, `${tick} tick: contrast ${ratio.toFixed(2)}:1 on the bubble`);
  await bob.fill('#input', 'See');
  await ann.locator('#typing', { hasText: 'is typing' }).waitFor();
  await ann.click('#tab-chats');
  await screenshot(ann, 'chat-desktop', { docs: true });
  await screenshot(bob, 'chat-desktop-bob');

  // Phone width: one pane at a time.
  await bob.setViewportSize(PHONE);
  await screenshot(bob, 'chat-phone', { docs: true });
  await bob.click('#back');
  await bob.locator('#rooms .room', { hasText: 'Ann Lee' }).waitFor(); // the chat was started from Friends: Chats shows
  assert.equal(await bob.locator('#chat').isVisible(), false, 'the chat pane is hidden on a phone while the list shows');
  await screenshot(bob, 'rooms-phone');
  noProblems(ann, bob);
  await ann.context().close();
  await bob.context().close();
});

test('a new friend\'s presence shows live', { skip }, async () => {
  const ann = await openPage(browser, server);
  const bob = await openPage(browser, server);
  const [a, b] = await Promise.all([server.register(handle('ann'), 'Ann'), server.register(handle('bob'), 'Bob')]);
  await loginUI(ann, a.handle);
  await loginUI(bob, b.handle);
  // Both are online; now they become friends and open a chat.
  await server.api('POST', '/api/v1/friends/requests', { user: b.id }, a.token);
  await server.api('POST', `/api/v1/friends/requests/${a.id}/accept`, null, b.token);
  await ann.click('#tab-friends');
  await ann.locator('#friends .person', { hasText: 'Bob' }).getByRole('button', { name: 'Message' }).click();
  await ann.locator('#composer').waitFor();
  try {
    await ann.locator('#chat-status', { hasText: 'online' }).waitFor({ timeout: 10_000 });
  } catch {
    assert.fail('server piece missing: no presence event for a friend (or a new room\'s member) gained while connected. ' +
      'gateway/presence.go follows only the members of small rooms, read once when a user connects, and not friends ' +
      '(its TODO: add FriendStore friends); the client shows presence correctly after a reconnect (see the reload test).');
  } finally {
    await ann.context().close();
    await bob.context().close();
  }
});

test('after a reload, history pages back in order and unread counts are right', { skip }, async () => {
  const [a, b, room] = await server.friends([handle('ann'), 'Ann Lee'], [handle('bob'), 'Bob Stone']);
  const ann = await openPage(browser, server);
  const bob = await openPage(browser, server);
  await loginUI(ann, a.handle);
  await loginUI(bob, b.handle);
  await roomItem(ann, room).click();
  const history = Array.from({ length: 60 }, (_, i) => `m${i + 1}`);
  await sendBulk(ann, room, history);

  // Bob is online with no chat open: the badge counts live, and the
  // same after a reload.
  const badge = roomItem(bob, room).locator('.badge');
  await badge.filter({ hasText: /^60$/ }).waitFor();
  await bob.reload();
  await badge.filter({ hasText: /^60$/ }).waitFor();
  assert.match(await roomItem(bob, room).locator('.preview').textContent(), /m60$/);

  // Opening shows the newest page; scrolling up loads the rest, in order.
  await roomItem(bob, room).click();
  await waitForTexts(bob, history.slice(10));
  await bob.locator('#scroller').evaluate((e) => { e.scrollTop = 0; });
  await waitForTexts(bob, history);
  await bob.locator('#history-state', { hasText: 'beginning of the conversation' }).waitFor();
  await badge.waitFor({ state: 'detached' });
  await bob.reload();
  await waitForTexts(bob, history.slice(10)); // the chat in the URL reopens
  assert.equal(await badge.count(), 0, 'read messages stay read after a reload');
  assert.equal(await bob.title(), 'Parley');

  // Bob leaves the chat; Ann writes twice.
  await bob.keyboard.press('Escape');
  await bob.locator('#chat-empty').waitFor();
  await say(ann, 'are you there?');
  await say(ann, 'ping me when you are back');
  await badge.filter({ hasText: /^2$/ }).waitFor();
  await bob.reload();
  await badge.filter({ hasText: /^2$/ }).waitFor();
  assert.equal(await bob.title(), '(2) Parley');
  await screenshot(bob, 'rooms-unread', { docs: true });

  // Ann reloads: her chat, its history and the receipts come back, and
  // Bob, who shares a room with her, shows online.
  await ann.reload();
  await waitForTexts(ann, [...history.slice(12), 'are you there?', 'ping me when you are back']);
  await message(ann, 'm60').locator('.tick.read').waitFor();
  assert.equal(await message(ann, 'ping me when you are back').locator('.tick.read').count(), 0, 'unread by Bob');
  await ann.locator('#chat-status', { hasText: 'online' }).waitFor();
  noProblems(ann, bob);
  await ann.context().close();
  await bob.context().close();
});

test('a group chat: made from friends, names on messages', { skip }, async () => {
  const [a, b] = await server.friends([handle('ann'), 'Ann Lee'], [handle('bob'), 'Bob Stone']);
  const ann = await openPage(browser, server);
  const bob = await openPage(browser, server);
  await loginUI(ann, a.handle);
  await loginUI(bob, b.handle);
  await ann.click('#new-group');
  await ann.fill('#group-form input[name=name]', 'Weekend plans');
  await ann.locator('#group-members label', { hasText: 'Bob Stone' }).locator('input').check();
  await ann.click('#group-form button[type=submit]');
  await ann.locator('#chat-name', { hasText: 'Weekend plans' }).waitFor();
  await ann.locator('#chat-status', { hasText: '2 members' }).waitFor();
  await say(ann, 'Who is in for Saturday?');

  // The server does not push new rooms: Bob's list finds it when read again.
  await bob.reload();
  const group = bob.locator('#rooms .room', { hasText: 'Weekend plans' });
  await group.locator('.badge', { hasText: /^1$/ }).waitFor();
  await group.click();
  await message(bob, 'Who is in for Saturday?').locator('.sender', { hasText: 'Ann Lee' }).waitFor();
  await say(bob, 'Me! 🙋');
  await message(ann, 'Me!').locator('.sender', { hasText: 'Bob Stone' }).waitFor();
  await screenshot(ann, 'group');
  noProblems(ann, bob);
  await ann.context().close();
  await bob.context().close();
});

test('after the server is killed and restarted, clients reconnect and show each message once, in order', { skip }, async () => {
  const [a, b, room] = await server.friends([handle('ann'), 'Ann Lee'], [handle('bob'), 'Bob Stone']);
  const ann = await openPage(browser, server);
  const bob = await openPage(browser, server);
  await loginUI(ann, a.handle);
  await loginUI(bob, b.handle);
  await roomItem(ann, room).click();
  await roomItem(bob, room).click();
  await say(ann, 'before the restart');
  await waitForTexts(bob, ['before the restart']);

  await server.kill();
  await bob.locator('#banner').waitFor();
  await ann.locator('#banner').waitFor();
  // Ann writes while the server is down: kept and shown as waiting.
  await say(ann, 'sent while down 1');
  await say(ann, 'sent while down 2');
  await ann.locator('#outbox .msg', { hasText: 'sent while down 2' }).locator('.meta', { hasText: 'Waiting for connection' }).waitFor();
  await screenshot(ann, 'offline');

  await server.start();
  await ann.locator('#banner').waitFor({ state: 'hidden', timeout: 30_000 });
  await ann.locator('#outbox .msg').first().waitFor({ state: 'detached' });
  await say(ann, 'after the restart');
  const want = ['before the restart', 'sent while down 1', 'sent while down 2', 'after the restart'];
  await waitForTexts(bob, want, 30_000);
  await bob.locator('#banner').waitFor({ state: 'hidden' });
  await waitForTexts(ann, want);
  await sleep(1000); // nothing more arrives late
  assert.deepEqual(await texts(bob), want);
  noProblems(ann, bob);
  await ann.context().close();
  await bob.context().close();
});

test('markup in messages, names and room names shows as text and runs nothing', { skip }, async () => {
  const evilName = '<img src=x onerror="window.__xss=\'name\'">';
  const [victim, evil, room] = await server.friends([handle('vic'), 'Victim'], [handle('evil'), evilName]);
  await server.api('POST', '/api/v1/rooms', { name: '<script>window.__xss="room"</script>', members: [victim.id] }, evil.token);
  const page = await openPage(browser, server);
  const res = await page.reload();
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  await loginUI(page, victim.handle);
  const evilPage = await openPage(browser, server);
  await loginUI(evilPage, evil.handle);
  await roomItem(evilPage, room).click();
  const payloads = [
    '<script>window.__xss="script"</script>',
    '<img src=x onerror="window.__xss=\'img\'">',
    '<b>not bold</b> & <a href="javascript:window.__xss=1">link</a>',
  ];
  for (const p of payloads) await say(evilPage, p);

  await roomItem(page, room).click();
  await waitForTexts(page, payloads);
  await page.locator('#chat-name', { hasText: evilName }).waitFor();
  await page.locator('#rooms .room', { hasText: '<script>window.__xss="room"</script>' }).waitFor();
  await sleep(300);
  for (const sel of ['#main img', '#main script', '#main b', '#main a']) {
    assert.equal(await page.locator(sel).count(), 0, `no ${sel} made from user data`);
  }
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected code ran');
  await screenshot(page, 'xss-as-text');
  noProblems(page, evilPage);
  await page.context().close();
  await evilPage.context().close();
});

// befriend makes two users friends by API, without a chat between them.
async function befriend(a, b) {
  await server.api('POST', '/api/v1/friends/requests', { user: b.id }, a.token);
  await server.api('POST', `/api/v1/friends/requests/${a.id}/accept`, null, b.token);
}

test('a chat opens scrolled to its last message, clear of the composer, at 1280 and 390 px', { skip }, async () => {
  const [a, b, room] = await server.friends([handle('ann'), 'Ann Lee'], [handle('bob'), 'Bob Stone']);
  const ann = await openPage(browser, server);
  await loginUI(ann, a.handle);
  await roomItem(ann, room).click();
  const sent = Array.from({ length: 40 }, (_, i) => `line ${i + 1}\nsecond row of ${i + 1}`);
  await sendBulk(ann, room, sent);
  for (const viewport of [{ width: 1280, height: 800 }, PHONE]) {
    const bob = await openPage(browser, server, viewport);
    await loginUI(bob, b.handle);
    await roomItem(bob, room).click();
    await message(bob, 'line 40').waitFor();
    await sleep(700); // names, ticks and older pages settle
    const gap = await bob.locator('#scroller').evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight);
    assert.ok(gap <= 1, `${viewport.width} px: ${gap} px short of the bottom`);
    const last = await message(bob, 'line 40').boundingBox();
    const composer = await bob.locator('#composer').boundingBox();
    const scroller = await bob.locator('#scroller').boundingBox();
    assert.ok(last.y + last.height <= composer.y && last.y + last.height <= scroller.y + scroller.height,
      `${viewport.width} px: the last message (bottom ${last.y + last.height}) is hidden behind the composer (top ${composer.y})`);
    noProblems(bob);
    await bob.context().close();
  }
  await ann.context().close();
});

test('removing a friend and deleting a message ask first', { skip }, async () => {
  const [a, , room] = await server.friends([handle('ann'), 'Ann Lee'], [handle('bob'), 'Bob Stone']);
  const ann = await openPage(browser, server);
  await loginUI(ann, a.handle);
  await roomItem(ann, room).click();
  await say(ann, 'keep me?');
  await message(ann, 'keep me?').locator('.tick').waitFor();
  const dialogs = [];
  const answer = (accept) => ann.once('dialog', (d) => {
    dialogs.push(d.message());
    return accept ? d.accept() : d.dismiss();
  });

  answer(false);
  await actOn(ann, 'keep me?', 'Delete');
  await sleep(500);
  assert.match(dialogs.at(-1), /Delete this message/);
  assert.equal(await ann.locator('#messages .msg.deleted').count(), 0, 'a dismissed delete deletes nothing');
  answer(true);
  await actOn(ann, 'keep me?', 'Delete');
  await ann.locator('#messages .msg.deleted').waitFor();

  await ann.click('#tab-friends');
  const bob = ann.locator('#friends .person', { hasText: 'Bob Stone' });
  answer(false);
  await bob.getByRole('button', { name: 'Remove friend' }).click();
  await sleep(500);
  assert.match(dialogs.at(-1), /Remove Bob Stone/);
  assert.equal(await bob.count(), 1, 'a dismissed removal removes nobody');
  answer(true);
  await bob.getByRole('button', { name: 'Remove friend' }).click();
  await bob.waitFor({ state: 'detached' });
  assert.equal(dialogs.length, 4);
  noProblems(ann);
  await ann.context().close();
});

test('after logging out the login card shows "Log in" with the handle cleared', { skip }, async () => {
  const page = await openPage(browser, server);
  await registerUI(page, handle('ann'), 'Ann Lee');
  await page.click('#logout');
  await page.locator('#auth:not([hidden])').waitFor();
  assert.equal(await page.getAttribute('#tab-login', 'aria-selected'), 'true');
  assert.equal(await page.getAttribute('#tab-register', 'aria-selected'), 'false');
  assert.equal(await page.textContent('#auth-submit'), 'Log in');
  assert.equal(await page.isVisible('#display-name-field'), false);
  assert.equal(await page.inputValue('input[name=handle]'), '');
  assert.equal(await page.inputValue('input[name=password]'), '');
  noProblems(page);
  await page.context().close();
});

test('a chat started from the Friends tab shows selected in the Chats list', { skip }, async () => {
  const [a, b] = await Promise.all([server.register(handle('ann'), 'Ann Lee'), server.register(handle('bob'), 'Bob Stone')]);
  await befriend(a, b);
  for (const viewport of [DESKTOP, PHONE]) {
    const ann = await openPage(browser, server, viewport);
    await loginUI(ann, a.handle);
    await ann.click('#tab-friends');
    await ann.locator('#friends .person', { hasText: 'Bob Stone' }).getByRole('button', { name: 'Message' }).click();
    await ann.locator('#chat-name', { hasText: 'Bob Stone' }).waitFor();
    if (viewport === PHONE) await ann.click('#back');
    const item = ann.locator('#rooms .room', { hasText: 'Bob Stone' });
    await item.waitFor();
    assert.equal(await ann.isVisible('#panel-chats'), true, `${viewport.width} px: the Chats list shows`);
    if (viewport === DESKTOP) assert.equal(await item.getAttribute('aria-current'), 'true', 'the new chat is selected');
    noProblems(ann);
    await ann.context().close();
  }
});

test('the chat list previews the last message; a group shows who made it, added and left', { skip }, async () => {
  const [a, b] = await server.friends([handle('ann'), 'Ann Lee'], [handle('bob'), 'Bob Stone']);
  const c = await server.register(handle('cat'), 'Cat Park');
  const group = await server.api('POST', '/api/v1/rooms', { name: 'Book club', members: [b.id] }, a.token);
  const ann = await openPage(browser, server);
  const bob = await openPage(browser, server);
  await loginUI(ann, a.handle);
  await loginUI(bob, b.handle);
  await roomItem(ann, group.id).click();
  await say(ann, 'first');
  await say(ann, 'second');
  const preview = (page) => roomItem(page, group.id).locator('.preview');
  await preview(bob).filter({ hasText: /^Ann Lee: second$/ }).waitFor();
  await actOn(ann, 'second', 'Edit');
  await ann.fill('#input', 'second, edited');
  await ann.press('#input', 'Enter');
  await preview(bob).filter({ hasText: /^Ann Lee: second, edited$/ }).waitFor();
  await actOn(ann, 'first', 'React');
  await message(ann, 'first').getByRole('button', { name: 'React 👍' }).click();
  ann.once('dialog', (d) => d.accept());
  await actOn(ann, 'second, edited', 'Delete');
  await preview(bob).filter({ hasText: /^Ann Lee: first$/ }).waitFor();
  await preview(ann).filter({ hasText: /^You: first$/ }).waitFor();
  await bob.reload(); // the same from sync, whose last entry is the delete
  await preview(bob).filter({ hasText: /^Ann Lee: first$/ }).waitFor();

  await server.api('POST', `/api/v1/rooms/${group.id}/members`, { users: [c.id] }, a.token);
  await server.api('DELETE', `/api/v1/rooms/${group.id}/members/${c.id}`, null, c.token);
  await roomItem(bob, group.id).click();
  await bob.locator('#messages .system', { hasText: 'Ann Lee added Cat Park' }).waitFor();
  await bob.locator('#messages .system', { hasText: 'Cat Park left' }).waitFor();
  await bob.locator('#history-state', { hasText: 'Ann Lee created the group' }).waitFor();
  await preview(bob).filter({ hasText: 'Cat Park left' }).waitFor();
  noProblems(ann, bob);
  await ann.context().close();
  await bob.context().close();
});

test('URLs in messages become safe links: http(s) only, new tab, no opener or referrer', { skip }, async () => {
  const [a, b, room] = await server.friends([handle('ann'), 'Ann Lee'], [handle('bob'), 'Bob Stone']);
  const ann = await openPage(browser, server);
  await loginUI(ann, a.handle);
  await roomItem(ann, room).click();
  const text = 'see https://example.com/wiki/A_(b)?q=1&r=2<i>x</i>. or (http://example.org/path), ' +
    'not javascript:alert(1) nor data:text/html,hi nor ftp://example.net';
  await say(ann, text);
  const bob = await openPage(browser, server);
  await loginUI(bob, b.handle);
  await roomItem(bob, room).click();
  const m = message(bob, 'see https://');
  await m.waitFor();
  assert.equal(await m.locator('.text').textContent(), text, 'the text reads as sent');
  const links = await m.locator('.text a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.textContent, a.target, a.rel, a.children.length]));
  assert.deepEqual(links, [
    ['https://example.com/wiki/A_(b)?q=1&r=2', 'https://example.com/wiki/A_(b)?q=1&r=2', '_blank', 'noopener noreferrer', 0],
    ['http://example.org/path', 'http://example.org/path', '_blank', 'noopener noreferrer', 0],
  ]);
  assert.equal(await bob.locator('#main i').count(), 0, 'no markup made from the text');
  noProblems(ann, bob);
  await ann.context().close();
  await bob.context().close();
});

test('typing steadily for 10 s, with sends and an emptied input, never trips the typing rate limit', { skip }, async () => {
  const [a, b, room] = await server.friends([handle('ann'), 'Ann Lee'], [handle('bob'), 'Bob Stone']);
  const ann = await openPage(browser, server);
  const bob = await openPage(browser, server);
  const limited = [];
  let typingFrames = 0;
  ann.on('websocket', (ws) => {
    ws.on('framesent', (f) => { if (String(f.payload).includes('"typing"')) typingFrames++; });
    ws.on('framereceived', (f) => { if (String(f.payload).includes('RATE_LIMITED')) limited.push(String(f.payload)); });
  });
  await loginUI(ann, a.handle);
  await loginUI(bob, b.handle);
  await roomItem(ann, room).click();
  await roomItem(bob, room).click();
  let seen = 0;
  const typingShown = setInterval(() => bob.locator('#typing', { hasText: 'is typing' }).count().then((n) => { seen += n; }, () => {}), 250);
  const end = Date.now() + 10_000;
  for (let i = 0; Date.now() < end; i++) {
    await ann.type('#input', 'hey there ', { delay: 60 });
    if (i % 3 === 1) await ann.fill('#input', ''); // emptied: a stop
    if (i % 3 === 2) await ann.press('#input', 'Enter');
  }
  clearInterval(typingShown);
  assert.deepEqual(limited, [], 'RATE_LIMITED answers');
  assert.ok(typingFrames >= 3, `typing was said (${typingFrames} frames)`);
  assert.ok(seen > 0, 'the other side saw the typing');
  noProblems(ann, bob);
  await ann.context().close();
  await bob.context().close();
});
