// An optional sound with notifications: off unless the person turns it on in
// their account settings (kept in this browser only). A short two-note chime
// made with WebAudio, so there is no sound file to fetch.

const KEY = 'hearth:v1:sound';
// Not more than one chime for a burst of messages.
const QUIET_MS = 2000;

let context = null;
let lastAt = 0;

export const sound = {
  /** Whether the person wants it, on this browser. */
  get on() {
    try {
      return localStorage.getItem(KEY) === 'on';
    } catch {
      return false;
    }
  },

  set on(value) {
    try {
      if (value) localStorage.setItem(KEY, 'on');
      else localStorage.removeItem(KEY);
    } catch {
      // Storage off: the choice lasts until the page closes.
    }
  },

  /** Plays the chime, if it is on (and not played a moment ago). */
  play() {
    if (!this.on || Date.now() - lastAt < QUIET_MS) return;
    const Context = globalThis.AudioContext ?? globalThis.webkitAudioContext;
    if (!Context) return;
    lastAt = Date.now();
    try {
      context ??= new Context();
      // Browsers keep audio suspended until the page has been interacted with.
      if (context.state === 'suspended') context.resume().catch(() => {});
      const start = context.currentTime + 0.01;
      [880, 1320].forEach((frequency, index) => {
        const at = start + index * 0.12;
        const oscillator = context.createOscillator();
        const gain = context.createGain();
        oscillator.type = 'sine';
        oscillator.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.2, at + 0.015);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
        oscillator.connect(gain).connect(context.destination);
        oscillator.start(at);
        oscillator.stop(at + 0.2);
      });
    } catch {
      // No audio device, or audio not allowed: silently none.
    }
  },
};
