"""What an ImageRepository's last scan says about the images of one branch prefix.

image-reflector-controller reports at most 10 of the tags it found (`latestTags`, the first
ten in descending string order) and how many it found (`tagCount`). That is enough to be sure
no tag starts with a prefix when the list is complete, or when its last (smallest) tag sorts
below the prefix: any tag left out sorts below that one, so cannot start with the prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kollie.fluxviews import ImageRepositoryView
from kollie.naming import parse_tag, tag_has_prefix

SHOWN = 5
"""How many tags a sentence quotes."""
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_DIGITS = re.compile(r"^[0-9]+$")


@dataclass(frozen=True, slots=True)
class TagEvidence:
    """The listed tags, sorted out for one prefix."""

    prefix: str
    matching: tuple[str, ...]
    """`<prefix>-<sha>-<timestamp>` tags: what the ImagePolicy selects from."""
    malformed: tuple[str, ...]
    """Tags of the prefix that are not `<sha>-<timestamp>` after it (CI's tag format is off)."""
    absent_for_sure: bool
    """No tag the registry has starts with `<prefix>-` (not only none of those listed)."""
    listed: int
    found: int
    newest: tuple[str, ...]
    """Some listed tags, newest first by their `-<timestamp>` where they have one."""


def evidence(prefix: str, repo: ImageRepositoryView) -> TagEvidence:
    start = f"{prefix}-"
    listed = repo.latest_tags
    with_prefix = [t for t in listed if t.startswith(start)]
    matching = tuple(t for t in with_prefix if tag_has_prefix(t, prefix))
    # `fix-login-<sha>-<ts>` starts with `fix-` but is another branch's well-formed tag.
    malformed = tuple(t for t in with_prefix if parse_tag(t) is None)
    complete = repo.tag_count <= len(listed)
    below = bool(listed) and min(listed) < start
    stamped = sorted(listed, key=lambda t: (parse_tag(t) is not None, _stamp(t)), reverse=True)
    return TagEvidence(
        prefix=prefix,
        matching=matching,
        malformed=malformed,
        absent_for_sure=not with_prefix and (complete or below),
        listed=len(listed),
        found=repo.tag_count,
        newest=tuple(stamped[:SHOWN]),
    )


def _stamp(tag: str) -> int:
    parsed = parse_tag(tag)
    return parsed.timestamp if parsed else 0


def what_is_wrong(tag: str, prefix: str) -> str:
    """Why a tag of the prefix is not `<prefix>-<sha>-<timestamp>`."""
    rest = tag[len(prefix) + 1 :]
    if _SHA.match(rest):
        return "it has no `-<timestamp>` after the commit"
    if _DIGITS.match(rest):
        return "it has no commit before the timestamp"
    return f"`{rest}` is not `<sha>-<timestamp>`"


def sentence(found: TagEvidence, image: str) -> str:
    """The finding in plain words, for an ImagePolicy that matches no tag."""
    form = f"`{found.prefix}-<sha>-<timestamp>`"
    if found.malformed:
        tag = found.malformed[0]
        others = len(found.malformed) - 1
        more = f" (and {others} more like it)" if others else ""
        return (
            f"CI pushed `{tag}`{more} to {image}, but Kollie follows only tags of the form "
            f"{form}: {what_is_wrong(tag, found.prefix)}. Fix the tag CI pushes."
        )
    if found.matching:
        return (
            f"{image} has `{found.matching[0]}`, which matches {form}; the ImagePolicy has not "
            "picked it yet."
        )
    newest = _quoted(found.newest)
    if found.absent_for_sure:
        return (
            f"No tag of {image} starts with `{found.prefix}-`: CI has not pushed an image of "
            f"this branch yet (newest tags: {newest})."
        )
    return (
        f"None of the {found.listed} tags Flux lists for {image} starts with "
        f"`{found.prefix}-` (it lists {found.listed} of {found.found}, the last in "
        f"alphabetical order); newest of those: {newest}."
    )


def _quoted(tags: tuple[str, ...]) -> str:
    return ", ".join(f"`{t}`" for t in tags) if tags else "none"
