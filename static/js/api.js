// The HTTP half of hearth's API. Every call goes through `request`, so error
// bodies become one ApiError type and a lost session is noticed in one place.

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, or 0 when the server could not be reached.
   * @param {string} code the API's stable snake_case code.
   * @param {string} message the API's human sentence, shown to the person as is.
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let sessionLostHandler = () => {};

/** Registers what to do when an authenticated call answers 401. */
export function onSessionLost(handler) {
  sessionLostHandler = handler;
}

/**
 * @param {string} method
 * @param {string} path below /api/v1
 * @param {object} [body] sent as JSON
 * @param {{authenticated?: boolean, busyRetries?: number}} [options]
 *   `authenticated: false` for the calls where a 401 is an answer (wrong
 *   password, not logged in yet) rather than a sign that the session ended.
 *   `busyRetries`: how often a `503 busy` is tried again after its
 *   `Retry-After` (logins and signups: their password hash waits for a
 *   server with time to spare, and the person should not have to press again).
 */
export async function request(method, path, body, { authenticated = true, busyRetries = 0 } = {}) {
  for (let tries = 0; ; tries += 1) {
    try {
      return await requestOnce(method, path, body, authenticated);
    } catch (error) {
      if (error.code !== 'busy' || tries >= busyRetries) throw error;
      const wait = Math.min(Math.max(error.retryAfter ?? 1, 1), 5);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
  }
}

async function requestOnce(method, path, body, authenticated) {
  const headers = { Accept: 'application/json' };
  // A file (a picture) goes as it is, with its own type; anything else as JSON.
  const raw = body instanceof Blob;
  if (body !== undefined) headers['Content-Type'] = raw ? body.type || 'application/octet-stream' : 'application/json';
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined || raw ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network_error', 'Could not reach the server. Check your connection and try again.');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // A proxy's HTML error page, or an empty body: fall through to a generic message.
  }
  if (response.ok) return data;

  const error = new ApiError(
    response.status,
    data?.error?.code ?? `http_${response.status}`,
    data?.error?.message ?? `The server answered with status ${response.status}.`,
  );
  error.retryAfter = Number(response.headers.get('Retry-After')) || null;
  // A wrong password (changing it, deleting the account) is also a 401, but
  // an answer about the password, not a sign that the session ended.
  if (response.status === 401 && authenticated && error.code !== 'invalid_credentials') sessionLostHandler(error);
  throw error;
}

/**
 * Uploads one file to a room for a message to carry, with progress. fetch
 * reports no upload progress, so this one call uses XMLHttpRequest; its
 * errors are the same ApiError as every other call's.
 * @param {string} roomId
 * @param {File|Blob} file sent as the raw body, with its own type
 * @param {string} name the file's name as people will see it
 * @param {(loaded: number, total: number) => void} onProgress
 * @returns {{done: Promise<object>, abort: () => void}} `done` gives the
 *   server's FILE; `abort` stops the upload (`done` then fails with code `aborted`)
 */
export function uploadFile(roomId, file, name, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', `/api/v1${room(roomId)}/uploads?${new URLSearchParams({ name })}`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.upload.addEventListener('progress', (event) => onProgress(event.loaded, event.total || file.size));
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        // A proxy's HTML error page: the status alone speaks.
      }
      if (xhr.status >= 200 && xhr.status < 300 && data?.file) {
        resolve(data.file);
        return;
      }
      const error = new ApiError(
        xhr.status,
        data?.error?.code ?? `http_${xhr.status}`,
        data?.error?.message ?? `The server answered with status ${xhr.status}.`,
      );
      error.retryAfter = Number(xhr.getResponseHeader('Retry-After')) || null;
      if (xhr.status === 401) sessionLostHandler(error);
      reject(error);
    });
    xhr.addEventListener('error', () =>
      reject(new ApiError(0, 'network_error', 'Could not reach the server. Check your connection and try again.')),
    );
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.')));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

const room = (id) => `/rooms/${encodeURIComponent(id)}`;
const message = (id, seq) => `${room(id)}/messages/${Number(seq)}`;

export const api = {
  me: () => request('GET', '/me', undefined, { authenticated: false }),
  /** @param {string} [invite] the code an invite-only server asks for */
  signup: (username, email, password, invite) =>
    request('POST', '/signup', invite ? { username, email, password, invite } : { username, email, password }, {
      authenticated: false,
      busyRetries: 4,
    }),
  login: (login, password) =>
    request('POST', '/login', { login, password }, { authenticated: false, busyRetries: 4 }),
  logout: () => request('POST', '/logout', undefined, { authenticated: false }),
  /** Ends every session of the account, this one too. */
  logoutEverywhere: () => request('POST', '/logout', { all: true }),
  changePassword: (currentPassword, newPassword) =>
    request('POST', '/me/password', { current_password: currentPassword, new_password: newPassword }),
  sessions: () => request('GET', '/me/sessions'),
  endSession: (id) => request('DELETE', `/me/sessions/${encodeURIComponent(id)}`),
  deleteAccount: (password) => request('DELETE', '/me', { password }),
  /** @param {Blob} picture a PNG, JPEG or WebP of at most 2 MiB; answers `{user}` */
  uploadAvatar: (picture) => request('PUT', '/me/avatar', picture),
  removeAvatar: () => request('DELETE', '/me/avatar'),

  rooms: () => request('GET', '/rooms'),
  /** @param {'public'|'private'} visibility */
  createRoom: (name, topic, visibility = 'public') =>
    request('POST', '/rooms', topic ? { name, topic, visibility } : { name, visibility }),
  joinRoom: (id) => request('POST', `${room(id)}/join`),
  leaveRoom: (id) => request('POST', `${room(id)}/leave`),
  members: (id) => request('GET', `${room(id)}/members`),
  /** One room as `{room}`, with this person's read state in it. */
  room: (id) => request('GET', room(id)),
  /**
   * Moves this person's read cursor in a room to `seq`: forward only, or
   * exactly with `force` ("mark as unread").
   */
  markRead: (id, seq, force = false) =>
    request('POST', `${room(id)}/read`, force ? { seq, force: true } : { seq }),
  /** @param {'all'|'mentions'|'none'} level what this person is notified of there */
  setNotifications: (id, level) => request('PUT', `${room(id)}/notifications`, { level }),

  /** @param {{limit?: number, before?: number, after?: number}} cursor */
  messages(id, { limit, before, after } = {}) {
    const query = new URLSearchParams();
    if (limit) query.set('limit', String(limit));
    if (before != null) query.set('before', String(before));
    if (after != null) query.set('after', String(after));
    const suffix = query.size ? `?${query}` : '';
    return request('GET', `${room(id)}/messages${suffix}`);
  },
  /**
   * @param {number|null} [replyTo] the seq of the message this one answers
   * @param {string[]} [files] ids of uploaded files the message carries
   */
  postMessage(id, body, clientId, replyTo = null, files = []) {
    const message = { body, client_id: clientId };
    if (replyTo != null) message.reply_to = replyTo;
    if (files.length) message.files = files;
    return request('POST', `${room(id)}/messages`, message);
  },
  /** Every kind of event after `after` (messages, edits, deletions, reactions), in seq order. */
  events: (id, after, limit) => request('GET', `${room(id)}/events?after=${Number(after)}&limit=${Number(limit)}`),
  editMessage: (id, seq, body) => request('PATCH', message(id, seq), { body }),
  edits: (id, seq) => request('GET', `${message(id, seq)}/edits`),
  deleteMessage: (id, seq) => request('DELETE', message(id, seq)),
  /** @param {boolean} on true adds this person's reaction, false takes it back */
  react: (id, seq, emoji, on) =>
    request(on ? 'PUT' : 'DELETE', `${message(id, seq)}/reactions/${encodeURIComponent(emoji)}`),

  /**
   * Messages matching `q` in the rooms this person is in, as `{results, next}`.
   * @param {{q: string, room?: string|null, sort?: 'relevance'|'recent', cursor?: string|null, limit?: number}} options
   */
  search({ q, room: roomId = null, sort = 'relevance', cursor = null, limit = 20 }) {
    const query = new URLSearchParams({ q, limit: String(limit) });
    if (roomId) query.set('room', roomId);
    if (sort === 'recent') query.set('sort', 'recent');
    if (cursor) query.set('cursor', cursor);
    return request('GET', `/search?${query}`);
  },
  /** Active accounts whose name starts with `prefix`, ignoring case. */
  users: (prefix, limit) => request('GET', `/users?${new URLSearchParams({ q: prefix, limit: String(limit) })}`),
  /** The direct room with these people (made the first time), as `{room}`. */
  directRoom: (userIds) => request('POST', '/dms', { users: userIds }),
  addMember: (id, userId) => request('POST', `${room(id)}/members`, { user: userId }),
  /** Takes someone else out of the room (owner and moderators). */
  removeMember: (id, userId) => request('DELETE', `${room(id)}/members/${encodeURIComponent(userId)}`),
  /** @param {'moderator'|'member'} role */
  setRole: (id, userId, role) => request('PUT', `${room(id)}/members/${encodeURIComponent(userId)}/role`, { role }),
  bans: (id) => request('GET', `${room(id)}/bans`),
  ban: (id, userId) => request('POST', `${room(id)}/bans`, { user: userId }),
  unban: (id, userId) => request('DELETE', `${room(id)}/bans/${encodeURIComponent(userId)}`),
  /** The room's incoming webhooks (never their secrets), as `{hooks}`. */
  hooks: (id) => request('GET', `${room(id)}/hooks`),
  /** Makes a webhook: `{hook, url}`, the URL's secret shown this once. */
  createHook: (id, name) => request('POST', `${room(id)}/hooks`, { name }),
  deleteHook: (id, hookId) => request('DELETE', `${room(id)}/hooks/${encodeURIComponent(hookId)}`),
  /** @param {{name?: string, topic?: string}} changes */
  updateRoom: (id, changes) => request('PATCH', room(id), changes),

  /** The server's Web Push public key, as `{key}` (base64url); 404 where the server sends no push. */
  pushKey: () => request('GET', '/push/key'),
  /** @param {{endpoint: string, keys: {p256dh: string, auth: string}}} subscription */
  addPushSubscription: (subscription) => request('POST', '/push/subscriptions', subscription),
  removePushSubscription: (endpoint) => request('DELETE', '/push/subscriptions', { endpoint }),
};
