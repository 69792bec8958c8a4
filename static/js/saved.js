// What the page keeps in localStorage for one person: drafts per room and the
// messages not yet confirmed by the server. (Where they have read to is the
// server's, the same on every device.)
// Keys carry the user id, so two accounts on one browser never mix. Storage
// can be full or switched off; then the page works as before, only forgetful.

const PREFIX = 'hearth:v1';

export class Saved {
  /** @param {string} userId */
  constructor(userId) {
    this.userId = userId;
  }

  key(name) {
    return `${PREFIX}:${this.userId}:${name}`;
  }

  read(name, fallback) {
    try {
      const text = localStorage.getItem(this.key(name));
      return text == null ? fallback : JSON.parse(text);
    } catch {
      return fallback;
    }
  }

  write(name, value) {
    try {
      localStorage.setItem(this.key(name), JSON.stringify(value));
    } catch {
      // Full or disabled: keeping it in memory only is the best there is.
    }
  }
}

/** A small `room id → value` map kept under one key. */
export class SavedMap {
  /**
   * @param {Saved|null} saved null while nobody is logged in
   * @param {string} name
   */
  constructor(saved, name) {
    this.saved = saved;
    this.name = name;
    this.map = saved ? saved.read(name, {}) : {};
  }

  get(roomId) {
    return this.map[roomId];
  }

  set(roomId, value) {
    if (value == null || value === '') delete this.map[roomId];
    else this.map[roomId] = value;
    this.saved?.write(this.name, this.map);
  }
}
