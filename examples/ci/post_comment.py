"""Post ``gittrack diff --md`` on a pull request (GitHub) or merge request (GitLab).

One comment per pull request: the comment whose body starts with the diff's heading
(``## gittrack diff``) is updated in place, so a push replaces the table rather than adding
one more. Python's standard library only, so it runs wherever gittrack does.

    python post_comment.py github FILE   # GITHUB_API_URL, GITHUB_REPOSITORY, PR_NUMBER, GH_TOKEN
    python post_comment.py gitlab FILE   # CI_API_V4_URL, CI_PROJECT_ID,
                                         # CI_MERGE_REQUEST_IID, GITLAB_TOKEN

Prints ``created <id>`` or ``updated <id>``; exits 1 with one line on stderr when the API
refuses (a missing token, a fork's read-only token).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

HEADING = "## gittrack diff"
PAGE = 100


def _request(method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _find(list_url: str, headers: dict[str, str], body_key: str) -> Any:
    """The id of the first comment that starts with the heading, or None."""
    page = 1
    while True:
        sep = "&" if "?" in list_url else "?"
        comments = _request("GET", f"{list_url}{sep}per_page={PAGE}&page={page}", headers)
        for comment in comments:
            if str(comment.get(body_key) or "").startswith(HEADING):
                return comment["id"]
        if len(comments) < PAGE:
            return None
        page += 1


def github(body: str, env: dict[str, str]) -> str:
    api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    issue = f"{api}/repos/{env['GITHUB_REPOSITORY']}/issues"
    headers = {
        "Authorization": f"Bearer {env['GH_TOKEN']}",
        "Accept": "application/vnd.github+json",
    }
    found = _find(f"{issue}/{env['PR_NUMBER']}/comments", headers, "body")
    if found is None:
        made = _request("POST", f"{issue}/{env['PR_NUMBER']}/comments", headers, {"body": body})
        return f"created {made['id']}"
    _request("PATCH", f"{issue}/comments/{found}", headers, {"body": body})
    return f"updated {found}"


def gitlab(body: str, env: dict[str, str]) -> str:
    api = env.get("CI_API_V4_URL", "https://gitlab.com/api/v4").rstrip("/")
    notes = (
        f"{api}/projects/{env['CI_PROJECT_ID']}/merge_requests/{env['CI_MERGE_REQUEST_IID']}/notes"
    )
    headers = {"PRIVATE-TOKEN": env["GITLAB_TOKEN"]}
    found = _find(f"{notes}?sort=asc", headers, "body")
    if found is None:
        made = _request("POST", notes, headers, {"body": body})
        return f"created {made['id']}"
    _request("PUT", f"{notes}/{found}", headers, {"body": body})
    return f"updated {found}"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("github", "gitlab"):
        print("usage: post_comment.py github|gitlab MARKDOWN_FILE", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        body = fh.read()
    post = github if argv[0] == "github" else gitlab
    try:
        print(post(body, dict(os.environ)))
    except KeyError as exc:
        print(f"post_comment: environment variable {exc.args[0]} is not set", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"post_comment: the {argv[0]} API refused the comment: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
