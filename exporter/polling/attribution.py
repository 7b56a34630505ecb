"""Per-user ACUs: which users keep a series of their own, and the label each one gets.

Devin answers ACUs per user id (`consumption_by_user` of v2 daily consumption). Per
window the `top` users by ACUs (ties broken by user id) keep a series of their own,
`other` holds the sum of every other user, and `unattributed` what Devin's total holds
beyond the sum of its users (when positive), so that a window's series add up to Devin's
total. A label is the user id itself (`id`), or (`hashed`) the first 16 hex characters of
HMAC-SHA256 keyed with the operator's key over the user id: stable across restarts and
replicas that share the key, and no raw id is kept, in memory or on disk, past the poll
that read it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

OTHER_USERS = "other"
UNATTRIBUTED = "unattributed"
RESERVED = frozenset({OTHER_USERS, UNATTRIBUTED})
DEFAULT_TOP = 20
HASH_HEX_CHARS = 16
# What Devin's total may exceed the sum of its users by before `unattributed` is shown:
# float noise of a sum of thousands of values is no ACU of anyone's.
UNATTRIBUTED_EPSILON = 1e-6

UserLabel = Literal["id", "hashed"]


@dataclass(frozen=True)
class UserLabels:
    """A user id's label: the id (`id`), or a keyed hash of it (`hashed`)."""

    mode: UserLabel = "id"
    key: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if self.mode == "hashed" and not self.key:
            raise ValueError("hashed user labels need a key")

    def __call__(self, user_id: str) -> str:
        if self.mode == "id":
            return user_id
        digest = hmac.new(self.key, user_id.encode(), hashlib.sha256).hexdigest()
        return digest[:HASH_HEX_CHARS]


@dataclass(frozen=True)
class Attribution:
    """How per-user ACUs are bounded (`top`) and labelled."""

    top: int = DEFAULT_TOP
    labels: UserLabels = field(default_factory=UserLabels)


class UserAcus(BaseModel):
    """ACUs of one window by label: the top users, `other`, and `unattributed` when Devin's
    total holds more than its users; they add up to `total` (Devin's `total_acus`)."""

    model_config = ConfigDict(frozen=True)

    by_label: dict[str, float]
    total: float
    users: int  # users in Devin's answer


def top_users(by_user: Mapping[str, float], total: float, attribution: Attribution) -> UserAcus:
    """The series of one window, from Devin's per-user ACUs and its total."""
    ranked = sorted(by_user.items(), key=lambda item: (-item[1], item[0]))
    own = [(u, acus) for u, acus in ranked if u not in RESERVED or attribution.labels.mode != "id"]
    kept = own[: attribution.top]
    by_label: dict[str, float] = {}
    for user_id, acus in kept:
        label = attribution.labels(user_id)
        by_label[label] = by_label.get(label, 0.0) + acus  # two ids, one hash: summed
    kept_ids = {u for u, _ in kept}
    by_label[OTHER_USERS] = sum(acus for u, acus in ranked if u not in kept_ids)
    rest = total - sum(by_user.values())
    if rest > UNATTRIBUTED_EPSILON:
        by_label[UNATTRIBUTED] = rest
    return UserAcus(by_label=by_label, total=total, users=len(by_user))
