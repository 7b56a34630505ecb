"""The repository of a pull request, `host/owner/name`, read from its URL.

Devin's session list gives each pull request as a URL only (`pull_requests[].pr_url`).
The hosts Devin integrates with shape those URLs differently; the repository is the
path before the part that names the pull request:

- GitHub (and GitHub Enterprise Server): `/{owner}/{name}/pull/{n}`
- GitLab, with any depth of subgroups: `/{group}/{subgroup}/{name}/-/merge_requests/{n}`
- Bitbucket Cloud: `/{workspace}/{name}/pull-requests/{n}`; Bitbucket Server and Data
  Center: `/projects/{key}/repos/{name}/pull-requests/{n}`
- Azure DevOps: `/{organization}/{project}/_git/{name}/pullrequest/{n}` on dev.azure.com,
  and `/{project}/_git/{name}/pullrequest/{n}` on `{organization}.visualstudio.com`

Host and path are lowercased (all four hosts treat them case-insensitively), a `www.`
and a `.git` are dropped, and credentials in a URL are never kept. A URL of no known
shape gives None.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

REPO_LABEL_MAX = 200
"""A repository label longer than this is no repository the exporter names."""


def repository(pr_url: str) -> str | None:
    """`github.com/acme/api` for `https://github.com/acme/api/pull/7`; None if unknown."""
    try:
        parts = urlsplit(pr_url.strip())
        host = parts.hostname  # lowercased, without credentials
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    host = host.removeprefix("www.")
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    segments = [unquote(s).lower() for s in parts.path.split("/") if s]
    path = _repository_path(segments)
    if path is None or not all(_plain(s) for s in path):
        return None
    label = "/".join([host, *path])
    return label if len(label) <= REPO_LABEL_MAX else None


def _repository_path(segments: list[str]) -> list[str] | None:
    """The segments that name the repository, by the shape of the pull request's path."""
    if "-" in segments:  # GitLab: the project path ends where `/-/` begins
        cut = segments.index("-")
        tail = segments[cut + 1 : cut + 2]
        return segments[:cut] if cut >= 2 and tail == ["merge_requests"] else None
    if "_git" in segments:  # Azure DevOps
        cut = segments.index("_git")
        if segments[cut + 2 : cut + 3] != ["pullrequest"]:
            return None
        return [*segments[:cut], _without_git(segments[cut + 1])] if cut >= 1 else None
    if "pull-requests" in segments:  # Bitbucket
        cut = segments.index("pull-requests")
        head = segments[:cut]
        if len(head) == 4 and head[0] == "projects" and head[2] == "repos":
            return [head[1], _without_git(head[3])]  # Server / Data Center
        return [head[0], _without_git(head[1])] if len(head) == 2 else None
    if "pull" in segments:  # GitHub
        cut = segments.index("pull")
        head = segments[:cut]
        return [head[0], _without_git(head[1])] if len(head) == 2 else None
    return None


def _without_git(name: str) -> str:
    return name.removesuffix(".git")


def _plain(segment: str) -> bool:
    """A path segment that can stand in a label as it is: printable, no separators."""
    return bool(segment) and segment.isprintable() and not any(c in segment for c in '/\\"')
