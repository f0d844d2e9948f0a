"""The tactile keypad (EN 301 549 5.1.6.1, 8.4.1): which key does what, kept apart from scanners' keys.

A USB numeric keypad with a raised 5 sends the keypad's own key codes
(Kivy's ``numpad0``…``numpadenter``, 256–271); with NumLock off the same
keys arrive as arrows, Insert and Delete, and those work too. A
keyboard-wedge barcode scanner types the main row's characters and Enter,
fast (``scanner.WedgeBuffer``): its keys never move the focus, because only
keypad codes and arrows do, and an Enter ends a scan when a fast run of
characters came before it, or chooses when a person pressed it.

The legend (docs/kiosk.md has it as a sticker for the keypad)::

    8 / ↑   up              *   speech on / off (the "speech" key)
    4 / ←   previous        /   screen off / on while speech is on (privacy)
    6 / →   next            +   louder
    2 / ↓   down            -   softer
    5 / Enter  choose       0   say it again
    .       back            9   high contrast on / off
"""

from __future__ import annotations

UP, DOWN, PREVIOUS, NEXT, CHOOSE, REPEAT, BACK = "up", "down", "previous", "next", "choose", "repeat", "back"
SPEECH, PRIVACY, LOUDER, SOFTER, CONTRAST = "speech", "privacy", "louder", "softer", "contrast"

# Kivy key codes (kivy.core.window.Keyboard.keycodes) → what the key does.
KEYS: dict[int, str] = {
    264: UP, 273: UP,  # numpad8, up
    258: DOWN, 274: DOWN,  # numpad2, down
    260: PREVIOUS, 276: PREVIOUS,  # numpad4, left
    262: NEXT, 275: NEXT,  # numpad6, right
    261: CHOOSE, 271: CHOOSE,  # numpad5, numpadenter
    256: REPEAT, 277: REPEAT,  # numpad0, insert (NumLock off)
    266: BACK, 127: BACK, 8: BACK,  # numpaddecimal, delete (NumLock off), backspace
    268: SPEECH,  # numpadmul
    267: PRIVACY,  # numpaddivide
    265: CONTRAST, 280: CONTRAST,  # numpad9, pageup (NumLock off)
    270: LOUDER,  # numpadadd
    269: SOFTER,  # numpadsubstract
}
ENTER = 13  # the main Enter: a scanner's end of code, or a person's "choose"

# The keypad's digits also arrive as text (NumLock on): that text is the keypad's, not a scanner's.
KEYPAD_TEXT = {256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270}


def action(key: int) -> str | None:
    return KEYS.get(key)
