"""repository(): the `host/owner/name` of a pull request URL, on every host Devin uses."""

from __future__ import annotations

import pytest

from exporter.polling.repos import REPO_LABEL_MAX, repository


@pytest.mark.parametrize(
    ("pr_url", "expected"),
    [
        ("https://github.com/acme/api/pull/7", "github.com/acme/api"),
        ("https://github.com/Acme/API/pull/7/files", "github.com/acme/api"),
        ("https://www.github.com/acme/api/pull/7", "github.com/acme/api"),
        ("https://ghe.acme.example/platform/auth/pull/12", "ghe.acme.example/platform/auth"),
        (
            "https://ghe.acme.example:8443/platform/auth/pull/1",
            "ghe.acme.example:8443/platform/auth",
        ),
        ("https://gitlab.com/acme/infra/-/merge_requests/3", "gitlab.com/acme/infra"),
        (
            "https://gitlab.com/acme/platform/billing/payments/-/merge_requests/3#note_1",
            "gitlab.com/acme/platform/billing/payments",
        ),
        (
            "https://gitlab.acme.example/data/warehouse/dbt/-/merge_requests/8/diffs",
            "gitlab.acme.example/data/warehouse/dbt",
        ),
        ("https://bitbucket.org/acme/mobile-app/pull-requests/5", "bitbucket.org/acme/mobile-app"),
        (
            "https://git.acme.example/projects/OPS/repos/deploy.git/pull-requests/5/overview",
            "git.acme.example/ops/deploy",
        ),
        (
            "https://dev.azure.com/acme/Payments/_git/ledger/pullrequest/9",
            "dev.azure.com/acme/payments/ledger",
        ),
        ("https://dev.azure.com/acme/_git/ledger/pullrequest/9", "dev.azure.com/acme/ledger"),
        (
            "https://acme.visualstudio.com/Legacy/_git/erp-connector/pullrequest/4",
            "acme.visualstudio.com/legacy/erp-connector",
        ),
        ("https://github.com/acme/my%20repo/pull/1", "github.com/acme/my repo"),
    ],
)
def test_each_host_s_pull_request_url_names_its_repository(pr_url: str, expected: str) -> None:
    assert expected == repository(pr_url)


def test_credentials_in_a_url_never_reach_the_label() -> None:
    assert "github.com/acme/api" == repository("https://bot:ghp_secret@github.com/acme/api/pull/1")


@pytest.mark.parametrize(
    "pr_url",
    [
        "",
        "not a url",
        "ftp://github.com/acme/api/pull/1",
        "https://github.com/acme/pull/1",  # no owner
        "https://github.com/a/b/c/pull/1",  # GitHub has no nesting
        "https://gitlab.com/acme/-/merge_requests/1",  # a group is no project
        "https://gitlab.com/acme/infra/-/issues/1",
        "https://dev.azure.com/acme/p/_git/r/commit/abc",
        "https://example.com/acme/api",
        "https://[::1/acme/api/pull/1",
        "https://github.com/acme/a%2Fb/pull/1",  # an escaped separator in a name
        f"https://github.com/acme/{'x' * REPO_LABEL_MAX}/pull/1",
    ],
)
def test_a_url_of_no_known_shape_names_no_repository(pr_url: str) -> None:
    assert repository(pr_url) is None
