"""Per-user ACUs: the top users, `other` and `unattributed`, and how users are labelled."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from exporter.polling.attribution import Attribution, UserLabels, top_users

BY_USER = {"user_a": 10.0, "user_b": 30.0, "user_c": 30.0, "user_d": 5.0, "user_e": 1.5}


def test_the_top_users_keep_their_series_and_the_rest_add_up_to_the_total() -> None:
    acus = top_users(BY_USER, 100.0, Attribution(top=2))

    # user_b and user_c tie: both outrank the others, in id order.
    assert {"user_b": 30.0, "user_c": 30.0, "other": 16.5, "unattributed": 23.5} == acus.by_label
    assert 100.0 == pytest.approx(sum(acus.by_label.values()))
    assert 5 == acus.users


def test_a_tie_at_the_cut_goes_to_the_lower_user_id() -> None:
    acus = top_users(BY_USER, 76.5, Attribution(top=1))

    assert {"user_b": 30.0, "other": 46.5} == acus.by_label  # no unattributed: none left


def test_fewer_users_than_top_leave_other_at_zero() -> None:
    acus = top_users({"user_a": 2.0}, 2.0, Attribution(top=20))

    assert {"user_a": 2.0, "other": 0.0} == acus.by_label


def test_a_total_below_the_users_sum_shows_no_unattributed() -> None:
    acus = top_users({"user_a": 2.0, "user_b": 1.0}, 2.5, Attribution(top=5))

    assert "unattributed" not in acus.by_label


def test_a_user_id_that_is_a_reserved_label_counts_under_other() -> None:
    acus = top_users({"other": 50.0, "unattributed": 40.0, "user_a": 1.0}, 91.0, Attribution(3))

    assert {"user_a": 1.0, "other": 90.0} == acus.by_label


def test_hashed_labels_are_the_first_16_hex_characters_of_the_hmac() -> None:
    labels = UserLabels("hashed", b"k3y")
    expected = hmac.new(b"k3y", b"user_b", hashlib.sha256).hexdigest()[:16]

    acus = top_users(BY_USER, 100.0, Attribution(top=1, labels=labels))

    assert {expected, "other", "unattributed"} == set(acus.by_label)
    assert not any(user in repr(acus) for user in BY_USER)
    assert "k3y" not in repr(labels)


def test_hashed_labels_need_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        UserLabels("hashed")
