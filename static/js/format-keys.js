// Formatting shortcuts in a text box: Ctrl+B (Cmd+B on a Mac) wraps the
// selection in `**`, Ctrl+I (Cmd+I) in `_`; pressed again on a wrapped
// selection they unwrap it. With nothing selected the markers go around the
// caret, ready to type between. The box's text stays the source text.

const SHORTCUTS = { b: '**', i: '_' };

/** Makes Ctrl/Cmd+B and Ctrl/Cmd+I format the selection of `box`. */
export function installFormatKeys(box) {
  box.addEventListener('keydown', (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey || event.isComposing) return;
    const marker = SHORTCUTS[event.key.toLowerCase()];
    if (!marker) return;
    event.preventDefault();
    toggleMarker(box, marker);
  });
}

/** Wraps (or unwraps) the selection of `box` in `marker`, keeping it selected. */
export function toggleMarker(box, marker) {
  const { selectionStart: start, selectionEnd: end, value } = box;
  const m = marker.length;
  const wrapped = start >= m && value.slice(start - m, start) === marker && value.slice(end, end + m) === marker;
  box.focus();
  if (wrapped) {
    box.setSelectionRange(start - m, end + m);
    insert(box, value.slice(start, end));
    box.setSelectionRange(start - m, end - m);
  } else {
    insert(box, `${marker}${value.slice(start, end)}${marker}`);
    box.setSelectionRange(start + m, end + m);
  }
}

/** Replaces the selection with `text` the way typing does, so Undo and `input` listeners see it. */
function insert(box, text) {
  // execCommand is deprecated but is the only way the browser's undo stack
  // learns of the change; where it is missing, setRangeText does the edit.
  if (!document.execCommand?.('insertText', false, text)) {
    box.setRangeText(text);
    box.dispatchEvent(new Event('input', { bubbles: true }));
  }
}
