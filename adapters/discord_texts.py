"""What the Discord adapter says that is Discord's own (threads, commands, help)."""

from __future__ import annotations

# Discord error code for "a thread has already been created for this message".
THREAD_ALREADY_CREATED = 160004
THREAD_FORBIDDEN = (
    "I can't start a thread here; ask a server admin to give me the Create Public Threads and "
    "Send Messages in Threads permissions in this channel."
)
THREAD_FAILED = "Discord wouldn't let me start a thread for this; please try again in a moment."
UNKNOWN_PLACE = "I couldn't tell which channel this is; please try again in a moment."
RESTARTING = "I'm restarting; try again in a minute."
MALFORMED_COMMAND = "I couldn't read that command's options; type / and pick the command from the list again."
FORGET_WHERE = (
    "Use /forget inside one of my image threads (or in a DM with me); it deletes that conversation."
)
HELP = """\
**Make an image**: mention me with a prompt, e.g. `@{name} a red bicycle at dawn, watercolor`, \
or use `/imagine`. I answer in a thread.
**Refine it**: {refine}
**Edit photos**: attach images to any message (up to {max_images} per turn).
**Go back**: reply to one of my earlier images to continue from that one.
**Shape and size**: add `--ar 16:9`{size_flag} to a prompt, use `/aspect`{size_command}, \
or pick a ratio under an image. Ratios: {ratios}.
**Buttons**: 🔁 Regenerate makes a new take on the same prompt; 🎲 Variations makes 4 at once \
(or add `--n 3` to a prompt), and Continue from this one picks the take to refine. Redo at 2K/4K \
draws an image again larger. `/model` or `--model` changes the model.
**Start over**: `/forget` deletes the thread's history. In DMs every message is a turn.
**Usage**: `/usage` shows the images you made and their estimated cost."""
