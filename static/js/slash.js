// Slash commands in the message box: `/me waves` (sent as typed, shown as
// "* alice waves"), `/topic`, `/invite @name`, `/leave`, `/dm @name`, and
// `/help`. Typing `/` at the start offers them (arrows, then Enter or Tab).
// A command is done here and never sent as a message; an unknown one is
// answered in words and stays in the box. `//text` sends "/text".

import { api } from './api.js';
import { byId, h } from './dom.js';
import { emoteAction } from './emote.js';
import { peopleError } from './people-picker.js';

export const COMMANDS = [
  { name: 'me', args: 'action', about: 'Say what you are doing: /me waves shows “* you waves”' },
  { name: 'topic', args: 'text', about: 'Set this room’s topic (owner and moderators); alone, show it' },
  { name: 'invite', args: '@name', about: 'Add someone to this room' },
  { name: 'leave', args: '', about: 'Leave this room' },
  { name: 'dm', args: '@name', about: 'Open a direct conversation' },
  { name: 'help', args: '', about: 'List these commands' },
];

const HELP =
  'Commands: /me action, /topic text, /invite @name, /leave, /dm @name (more names for a group), /help. ' +
  'Start with // to send a message that begins with /.';

/** `@alice` or `alice` → `alice`. */
const nameOf = (word) => word.replace(/^@/, '');

export class SlashCommands {
  /**
   * @param {object} options
   * @param {import('./composer.js').Composer} options.composer
   * @param {() => object|null} options.openRoom the open room's entry
   * @param {(text: string) => void} options.say a sentence for the person (a toast)
   * @param {() => Promise<void>} options.leave leaves the open room
   * @param {(room: object) => void} options.roomChanged the server's new version of a room
   * @param {(room: object) => void} options.openDirect a direct room to open
   * @param {() => object|null} options.me the signed-in user
   * @param {(body: string, replyTo: object|null) => void} options.send sends a message to the open room
   */
  constructor({ composer, openRoom, say, leave, roomChanged, openDirect, me, send }) {
    this.composer = composer;
    this.send = send;
    this.openRoom = openRoom;
    this.say = say;
    this.leave = leave;
    this.roomChanged = roomChanged;
    this.openDirect = openDirect;
    this.me = me;
    this.list = byId('slash-list');
    /** @type {{matches: object[], active: number}|null} */
    this.open = null;
    const input = composer.input;
    input.addEventListener('input', () => this.suggest());
    input.addEventListener('click', () => this.suggest());
    input.addEventListener('blur', () => this.close());
    // Before the box's own keys (Enter sends): the form sees them first.
    composer.form.addEventListener('keydown', (event) => this.onKey(event), true);
    this.list.addEventListener('pointerdown', (event) => event.preventDefault());
    this.list.addEventListener('click', (event) => {
      const option = event.target.closest('[role="option"]');
      if (option && this.open) this.pick(this.open.matches[Number(option.dataset.index)]);
    });
  }

  /**
   * What becomes of `body`: sent as it is (plain text, and `/me`), or null
   * when it is done here: a command, or `//text` sent as "/text".
   */
  route(body) {
    if (!body.startsWith('/')) return body;
    if (emoteAction(body) !== null) return body;
    if (body.startsWith('//')) {
      this.close();
      this.send(body.slice(1), this.composer.reply);
      this.composer.cancelReply();
      this.composer.setText('');
      return null;
    }
    this.close();
    this.run(body);
    return null;
  }

  async run(body) {
    const [, name = '', rest = ''] = /^\/(\S*)\s*([\s\S]*)$/.exec(body) ?? [];
    const entry = this.openRoom();
    const fail = (text) => this.composer.showError(text);
    const done = () => this.composer.setText('');
    const args = rest.trim();
    try {
      switch (name.toLowerCase()) {
        case 'me':
          fail('Say what you are doing after /me, e.g. /me waves.');
          return;
        case 'help':
        case '?':
          done();
          this.say(HELP);
          return;
        case 'topic': {
          if (!entry) return;
          if (entry.direct) {
            fail('A direct conversation has no topic.');
            return;
          }
          // Alone, it tells the topic: clearing it is for the room's details, not a slip of Enter.
          if (!args) {
            done();
            const topic = entry.room.topic;
            this.say(topic ? `The topic of ${entry.name} is “${topic}”.` : `${entry.name} has no topic. /topic and some words sets one.`);
            return;
          }
          const { room } = await api.updateRoom(entry.id, { topic: args });
          this.roomChanged(room);
          done();
          this.say(`Topic of ${entry.name} set to “${args}”.`);
          return;
        }
        case 'invite': {
          if (!entry) return;
          const names = args.split(/\s+/).filter(Boolean).map(nameOf);
          if (!names.length) {
            fail('Say whom to add: /invite @name.');
            return;
          }
          const people = await this.findPeople(names);
          if (!people) return;
          for (const person of people) await api.addMember(entry.id, person.id);
          done();
          this.say(`Added ${people.map((person) => person.username).join(', ')} to ${entry.name}.`);
          return;
        }
        case 'leave':
          if (!entry) return;
          if (entry.direct) {
            fail('A direct conversation cannot be left.');
            return;
          }
          done();
          await this.leave();
          return;
        case 'dm': {
          const names = args.split(/\s+/).filter(Boolean).map(nameOf);
          if (!names.length) {
            fail('Say whom to write to: /dm @name.');
            return;
          }
          const people = await this.findPeople(names);
          if (!people) return;
          const { room } = await api.directRoom(people.map((person) => person.id));
          done();
          this.openDirect(room);
          return;
        }
        default:
          fail(
            name
              ? `There is no command /${name}. Type /help for the list, or start with // to send a message that begins with /.`
              : 'Type a command after /, or /help for the list. Start with // to send a message that begins with /.',
          );
      }
    } catch (error) {
      fail(this.errorText(name.toLowerCase(), error));
    }
  }

  errorText(command, error) {
    if (command === 'topic' && error.code === 'forbidden') return 'Only the room’s owner or a moderator can change its topic.';
    return peopleError(error);
  }

  /** The accounts named, exactly; null (with the reason shown) when one is not found. */
  async findPeople(names) {
    const people = [];
    for (const name of names) {
      const { users } = await api.users(name, 20);
      const person = users.find((user) => user.username.toLocaleLowerCase() === name.toLocaleLowerCase());
      if (!person) {
        this.composer.showError(`There is no one called ${name}.`);
        return null;
      }
      if (person.id === this.me()?.id) {
        this.composer.showError('That is you. Name someone else.');
        return null;
      }
      if (!people.some((p) => p.id === person.id)) people.push(person);
    }
    return people;
  }

  // ---- Suggestions -------------------------------------------------------------

  /** Offers the commands that start with what is typed after a leading `/`. */
  suggest() {
    const { value, selectionStart, selectionEnd } = this.composer.input;
    const match = /^\/(\w*)$/.exec(value.slice(0, selectionStart));
    if (!match || selectionStart !== selectionEnd || value.length !== selectionStart) {
      this.close();
      return;
    }
    const typed = match[1].toLowerCase();
    const matches = COMMANDS.filter((command) => command.name.startsWith(typed));
    if (!matches.length) {
      this.close();
      return;
    }
    const active = this.open ? Math.min(this.open.active, matches.length - 1) : 0;
    this.open = { matches, active };
    this.render();
  }

  render() {
    const { matches, active } = this.open;
    this.list.replaceChildren(
      ...matches.map((command, index) =>
        h(
          'li',
          { id: `slash-option-${index}`, role: 'option', class: 'mention-option slash-option', 'aria-selected': String(index === active), 'data-index': index },
          h('span', { class: 'slash-name', text: `/${command.name}${command.args ? ` ${command.args}` : ''}` }),
          h('span', { class: 'slash-about muted', text: command.about }),
        ),
      ),
    );
    this.list.hidden = false;
    this.composer.input.setAttribute('aria-controls', 'slash-list');
    this.composer.input.setAttribute('aria-activedescendant', `slash-option-${active}`);
    byId(`slash-option-${active}`).scrollIntoView({ block: 'nearest' });
  }

  onKey(event) {
    if (!this.open || event.target !== this.composer.input) return;
    const { matches } = this.open;
    const move = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (move) {
      this.open.active = (this.open.active + move + matches.length) % matches.length;
      this.render();
    } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey && !event.isComposing) {
      const chosen = matches[this.open.active];
      // Enter on a command typed out in full that takes nothing runs it.
      if (event.key === 'Enter' && !chosen.args && this.composer.input.value === `/${chosen.name}`) {
        this.close();
        return;
      }
      this.pick(chosen);
    } else if (event.key === 'Escape') {
      this.close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }

  /** Puts `/name ` in the box, ready for what follows. */
  pick(command) {
    if (!command) return;
    this.close();
    this.composer.setText(`/${command.name}${command.args ? ' ' : ''}`);
    this.composer.focus();
  }

  close() {
    if (!this.open) return;
    this.open = null;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.composer.input.setAttribute('aria-controls', 'mention-list');
    this.composer.input.removeAttribute('aria-activedescendant');
  }
}
