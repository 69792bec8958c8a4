// The emoji offered for reactions: a quick few in the message menu and a
// modest list, searchable by name, in the picker. Built in on purpose: no
// emoji library to download, and the names double as accessible labels.
// Reactions others made may use any emoji; those are shown as sent.

/** @type {Array<[string, string]>} [emoji, name] */
const LIST = [
  ['👍', 'thumbs up'],
  ['❤️', 'red heart'],
  ['😂', 'face with tears of joy'],
  ['🎉', 'party popper'],
  ['😮', 'face with open mouth'],
  ['😢', 'crying face'],
  ['👎', 'thumbs down'],
  ['🙏', 'folded hands'],
  ['👀', 'eyes'],
  ['🔥', 'fire'],
  ['✅', 'check mark'],
  ['❌', 'cross mark'],
  ['💯', 'hundred points'],
  ['🚀', 'rocket'],
  ['👏', 'clapping hands'],
  ['🙌', 'raising hands'],
  ['👋', 'waving hand'],
  ['💪', 'flexed biceps'],
  ['🤝', 'handshake'],
  ['👌', 'ok hand'],
  ['✌️', 'victory hand'],
  ['🤞', 'crossed fingers'],
  ['😀', 'grinning face'],
  ['😄', 'grinning face with smiling eyes'],
  ['😅', 'grinning face with sweat'],
  ['🤣', 'rolling on the floor laughing'],
  ['🙂', 'slightly smiling face'],
  ['😉', 'winking face'],
  ['😊', 'smiling face with smiling eyes'],
  ['😍', 'smiling face with heart eyes'],
  ['🥰', 'smiling face with hearts'],
  ['😘', 'face blowing a kiss'],
  ['😎', 'smiling face with sunglasses'],
  ['🤔', 'thinking face'],
  ['🤨', 'face with raised eyebrow'],
  ['😐', 'neutral face'],
  ['🙄', 'face with rolling eyes'],
  ['😬', 'grimacing face'],
  ['😴', 'sleeping face'],
  ['🤯', 'exploding head'],
  ['🥳', 'partying face'],
  ['🥺', 'pleading face'],
  ['😭', 'loudly crying face'],
  ['😱', 'face screaming in fear'],
  ['😡', 'pouting face'],
  ['🤗', 'smiling face with open hands'],
  ['🤷', 'person shrugging'],
  ['🤦', 'person facepalming'],
  ['🙈', 'see no evil monkey'],
  ['💀', 'skull'],
  ['👻', 'ghost'],
  ['🤖', 'robot'],
  ['💩', 'pile of poo'],
  ['⭐', 'star'],
  ['✨', 'sparkles'],
  ['⚡', 'high voltage'],
  ['☀️', 'sun'],
  ['🌈', 'rainbow'],
  ['🍕', 'pizza'],
  ['☕', 'hot beverage'],
  ['🍺', 'beer mug'],
  ['🎂', 'birthday cake'],
  ['🎁', 'wrapped gift'],
  ['🏆', 'trophy'],
  ['💡', 'light bulb'],
  ['📌', 'pushpin'],
  ['🐛', 'bug'],
  ['🔧', 'wrench'],
  ['⚠️', 'warning'],
  ['❓', 'question mark'],
  ['❗', 'exclamation mark'],
  ['➕', 'plus'],
  ['💔', 'broken heart'],
  ['💙', 'blue heart'],
  ['💚', 'green heart'],
  ['🧡', 'orange heart'],
  ['🐱', 'cat face'],
  ['🐶', 'dog face'],
];

const NAMES = new Map(LIST);

/** The reactions in the message menu, one press away. */
export const QUICK_EMOJI = LIST.slice(0, 6).map(([emoji]) => emoji);

/** A readable name for an emoji: ours if it is in the list, else the emoji itself. */
export function emojiName(emoji) {
  return NAMES.get(emoji) ?? emoji;
}

/** The listed emoji whose name contains every word typed, in list order. */
export function searchEmoji(query) {
  const words = query.trim().toLocaleLowerCase().split(/\s+/).filter(Boolean);
  return LIST.filter(([emoji, name]) => words.every((word) => name.includes(word) || emoji === word)).map(
    ([emoji, name]) => ({ emoji, name }),
  );
}
