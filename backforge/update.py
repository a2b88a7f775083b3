"""`backforge update`: pull template changes into a project safely, and name every conflict.

The flow:

1. Refuse (UsageError, nothing changed) when DEST is not a git repository, has no
   `.copier-answers.yml` recording the template it came from, its tree is dirty (staged,
   modified, deleted, untracked or unmerged files; ignored files such as `.env` do not count),
   or `data` changes an answer that cannot change safely once the database has been migrated:
   `database`, or switching a capability off (`auth` jwt -> none, `multi_tenant` true -> false).
   Switching a capability on is fine: it brings its own migration revisions.
2. `copier.run_update`: trusted, overwrite, the stored answers plus any `data` changes (an answer
   to a question the project has never answered, such as a feature added by a newer template
   version, is accepted). Invalid answers, an unknown `data` key or any Copier failure put the
   project back exactly as it was (`git reset`, `git checkout`, `git clean`; the tree was clean)
   and raise UsageError with Copier's message.
3. Find every conflict Copier leaves behind while exiting 0: conflict markers (`<<<<<<<` /
   `>>>>>>>` lines) in the files the update changed or added, `*.rej` files beside the files
   whose hunks did not apply, and unmerged index entries. Copier also deletes the files that the
   new template (or a changed answer, such as `docker=false`) no longer renders, even when the
   user had edited them: those are reported too (`removed`), found by rendering the old
   template revision again. Each conflict comes with what to do next.
4. Then, unless the base left conflicts, each resource (`resources`: its answers file
   `.copier-answers.resource-NAME.yml` and the revision to update it to) the same way, with
   `answers_file` and the project's current answers (`resource_update_data`: switching
   `multi_tenant` on makes an owner-scoped resource organization-scoped, so that its rows move
   into their owners' personal organizations). Copier refuses a dirty tree, so the work of each
   template is committed before the next one runs, and those commits are taken back at the end
   (the branch returns to where it was; the changes stay in the work tree, unstaged). Every
   conflict names its template (`base`, `resource NAME`); a template that leaves conflicts stops
   the update there and the resources after it are `pending`. A Copier failure in a resource
   puts the whole project back.
5. Unless `install` is False or conflicts remain, `uv lock` and `uv sync`. Nothing is committed:
   the user reviews `git diff` and commits.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Final, Literal

import copier

from backforge.answers import check_data, parse_yes_no
from backforge.commands import git_commit, run, uv_binary
from backforge.errors import CommandError, UsageError
from backforge.resources.project import read_yaml, resource_update_data
from backforge.template import template_checkout

__all__ = [
    "ANSWERS_FILE",
    "Conflict",
    "ConflictKind",
    "ConflictMode",
    "TemplateUpdate",
    "UpdateResult",
    "check_clean",
    "check_repository",
    "dirty_files",
    "edited_removals",
    "find_conflicts",
    "refused_answer_changes",
    "restore",
    "update_project",
]

ANSWERS_FILE: Final = ".copier-answers.yml"
"""Where the rendered project records its answers and template (`_src_path`, `_commit`)."""

MIGRATIONS: Final = "migrations/versions"
"""The rendered project's Alembic revisions: an update adds files here, never changes one."""

ConflictMode = Literal["rej", "inline"]
"""How Copier leaves a hunk that does not apply: `.rej` files beside the file, or markers in it."""

ConflictKind = Literal["inline", "rej", "unmerged", "removed"]
"""`inline`: conflict markers in the file; `rej`: a `<file>.rej` holds hunks that did not apply;
`unmerged`: the index holds several versions of the file (Copier records them for inline
conflicts, so `git diff` and `git mergetool` show both sides); `removed`: the update deleted a
file that the template no longer renders although the user had changed it (it is still in HEAD).
"""

_MARKER_STARTS: Final = (b"<<<<<<<", b">>>>>>>")
_KIND_ORDER: Final[Mapping[ConflictKind, int]] = {
    "inline": 0,
    "rej": 1,
    "unmerged": 2,
    "removed": 3,
}


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """One conflicted file of the project, named relative to the project root (POSIX style)."""

    path: str
    kinds: tuple[ConflictKind, ...]
    """Every kind found for this file, most telling first (inline, rej, unmerged, removed)."""
    line: int | None = None
    """The first conflict marker's line number (1-based), for `inline`."""
    template: str = "base"
    """The template whose update left it: `base`, or `resource NAME`."""

    @property
    def kind(self) -> ConflictKind:
        return self.kinds[0]

    @property
    def reject_file(self) -> str | None:
        """The `.rej` file beside `path`, for `rej` conflicts."""
        return f"{self.path}.rej" if "rej" in self.kinds else None

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    @property
    def advice(self) -> str:
        """What to do next, in one sentence."""
        steps: list[str] = []
        if "inline" in self.kinds:
            steps.append(
                f"edit {self.location}: between `<<<<<<< before updating` (your version) and "
                "`>>>>>>> after updating` (the template's), keep what you want and delete the "
                "marker lines"
            )
        if "rej" in self.kinds:
            steps.append(
                f"{self.path} has the template's new lines; {self.reject_file} holds your changes "
                f"that did not apply: re-apply them by hand, then delete {self.reject_file}"
            )
        if "unmerged" in self.kinds and "inline" not in self.kinds:
            steps.append(
                f"resolve {self.path} (`git diff {self.path}` shows both sides; `git checkout "
                f"--ours {self.path}` keeps yours, `--theirs` the template's)"
            )
        if "unmerged" in self.kinds:
            steps.append(f"then `git add {self.path}` to mark it resolved")
        if "removed" in self.kinds:
            steps.append(
                f"the template no longer renders {self.path}, which you had changed, so the "
                f"update deleted it: `git checkout HEAD -- {self.path}` brings your version "
                "back; leave it deleted if you no longer need it"
            )
        return "; ".join(steps)


@dataclass(frozen=True)
class TemplateUpdate:
    """One template's part of an update: the base template or one resource."""

    template: str
    """`base`, or `resource NAME`."""
    answers_file: str
    from_version: str
    to_version: str
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True)
class UpdateResult:
    """What `update_project` did; `exit_code` is the CLI's (1: conflicts or install failed)."""

    dest: Path
    from_version: str
    """The template version (`_commit`) the project was at."""
    to_version: str
    """The template version (`_commit`) the project is at now."""
    changed: tuple[str, ...]
    """Files the update added, changed or deleted (per `git status`), relative to `dest`."""
    conflicts: tuple[Conflict, ...]
    installed: bool = False
    """True when `uv lock` and `uv sync` ran and succeeded."""
    install_error: str | None = None
    """Why `uv lock` / `uv sync` failed (the update itself is kept)."""
    warnings: tuple[str, ...] = field(default=())
    """Warnings Copier raised during the update."""
    templates: tuple[TemplateUpdate, ...] = field(default=())
    """Each template updated, in order: the base, then each resource."""
    pending: tuple[str, ...] = field(default=())
    """Resources' answers files not updated because an earlier template left conflicts."""

    @property
    def ok(self) -> bool:
        return not self.conflicts and self.install_error is None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def up_to_date(self) -> bool:
        """True when the project was already at the template version and nothing changed."""
        return self.from_version == self.to_version and not self.changed and self.ok

    def next_steps(self) -> list[str]:
        """Commands and actions for the user, in order (none when `up_to_date`)."""
        if self.up_to_date:
            return []
        steps = [f"cd {self.dest}"]
        steps += [conflict.advice for conflict in self.conflicts]
        steps.append("git diff                 # review what the update changed")
        if not self.installed:
            steps.append("uv lock && uv sync       # re-lock and install")
        if self.pending:
            steps.append(
                "then commit, and run `backforge update` again to update the resources not "
                f"updated yet ({', '.join(self.pending)})"
            )
        if any(path.startswith(f"{MIGRATIONS}/") for path in self.changed):
            steps.append("uv run alembic upgrade heads   # apply the template's new revisions")
        steps.append("uv run pytest")
        if self.from_version != self.to_version:
            message = f"Update to template {self.to_version}"
        elif ANSWERS_FILE in self.changed:
            message = f"Change the answers of template {self.to_version}"
        else:  # the same template and answers: only `uv lock` wrote a (first) lockfile
            message = "Lock dependencies"
        steps.append(f'git add -A && git commit -m "{message}"')
        return steps


# ---------------------------------------------------------------------------------------------
# git helpers
# ---------------------------------------------------------------------------------------------


def _git(dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "core.quotePath=false", *args],
        cwd=dest,
        capture_output=True,
        text=True,
        check=False,
    )


def _git_out(dest: Path, *args: str) -> str:
    result = _git(dest, *args)
    if result.returncode != 0:
        raise CommandError(["git", *args], result.returncode, result.stdout + result.stderr)
    return result.stdout


def _split_z(output: str) -> list[str]:
    return [item for item in output.split("\0") if item]


@dataclass(frozen=True)
class _Status:
    code: str
    """Porcelain v1 XY code: ` M`, `A `, `UU`, `??`, ..."""
    path: str
    """Relative to the project root."""


def _status(dest: Path) -> list[_Status]:
    """`git status` of the project's subtree; untracked files one by one; ignored ones left out."""
    prefix = _git_out(dest, "rev-parse", "--show-prefix").strip()
    fields = _split_z(
        _git_out(dest, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    )
    entries: list[_Status] = []
    index = 0
    while index < len(fields):
        entry = fields[index]
        code, path = entry[:2], entry[3:]
        index += 1
        if code[0] in "RC":  # renames and copies carry their source path as the next field
            index += 1
        entries.append(_Status(code, path.removeprefix(prefix)))
    return entries


def _ignored_rejects(dest: Path) -> set[str]:
    """`*.rej` files that git ignores (Copier still writes them)."""
    listed = _git_out(
        dest, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory", "--"
    )
    return {path for path in _split_z(listed) if path.endswith(".rej")}


def _unmerged(dest: Path) -> set[str]:
    listed = _split_z(_git_out(dest, "ls-files", "-z", "--unmerged", "--", "."))
    return {entry.split("\t", 1)[1] for entry in listed if "\t" in entry}


def dirty_files(dest: Path) -> list[str]:
    """Every staged, modified, deleted, unmerged or untracked (not ignored) file, as `XY path`."""
    return [f"{entry.code} {entry.path}" for entry in _status(dest)]


def restore(dest: Path) -> list[str]:
    """Put a project whose tree was clean back to HEAD; return whatever is still dirty."""
    _git(dest, "reset", "--quiet", "--", ".")
    _git(dest, "checkout", "--quiet", "--", ".")
    _git(dest, "clean", "-d", "--force", "--quiet", "--", ".")
    return dirty_files(dest)


# ---------------------------------------------------------------------------------------------
# Checks before updating
# ---------------------------------------------------------------------------------------------


def _read_answers(dest: Path, answers_file: str = ANSWERS_FILE) -> dict[str, Any]:
    path = dest / answers_file
    if not path.is_file():
        raise UsageError(
            f"{dest} is not a backforge project: it has no {ANSWERS_FILE} (the file a project "
            "rendered by `backforge new` or Copier records its template and answers in), so "
            "there is nothing to update from; run `backforge update` in a project's folder"
            if answers_file == ANSWERS_FILE
            else f"{dest} has no {answers_file}: the resource's answers file was moved or "
            "removed, so there is nothing to update it from"
        )
    answers = read_yaml(path)
    missing = [key for key in ("_src_path", "_commit") if not answers.get(key)]
    if missing:
        raise UsageError(
            f"{path} does not record {' and '.join(missing)}, so the template version the "
            "project came from is unknown; re-render it with `backforge new` from a tagged "
            "template and copy your code over"
        )
    return answers


def _check_source(dest: Path, answers: Mapping[str, Any]) -> str:
    """A local template path recorded in the answers file must still exist; the source."""
    source = str(answers["_src_path"])
    if "://" in source or source.startswith(("git@", "gh:", "gl:")):
        return source
    path = Path(source).expanduser()
    if path.exists():
        return str(path)
    if not path.is_absolute() and (dest / path).exists():
        return str(dest / path)
    raise UsageError(
        f"the template that {dest / ANSWERS_FILE} records (_src_path: {source}) is not there "
        "any more; set _src_path to the template's current path or git URL, commit, and update"
    )


def _check_folder(dest: Path) -> None:
    if not dest.is_dir():
        raise UsageError(f"{dest} does not exist or is not a folder")


def check_repository(dest: Path) -> None:
    """`dest` is a folder and a git repository with a commit (UsageError otherwise)."""
    _check_folder(dest)
    inside = _git(dest, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise UsageError(
            f"{dest} is not a git repository; updates need git to merge the template's changes "
            "with yours (git init && git add -A && git commit -m 'Initial commit')"
        )
    if _git(dest, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        raise UsageError(f"{dest} has no commit yet; commit the project first")


def check_clean(dest: Path) -> None:
    dirty = dirty_files(dest)
    if dirty:
        shown = "\n  ".join(dirty[:50])
        more = f"\n  ... and {len(dirty) - 50} more" if len(dirty) > 50 else ""
        raise UsageError(
            f"{dest} has uncommitted changes; commit or stash them first "
            f"(git stash --include-untracked), then update:\n  {shown}{more}"
        )


# ---------------------------------------------------------------------------------------------
# Answers that cannot change in an update
# ---------------------------------------------------------------------------------------------

FIXED_ANSWERS: Final[Mapping[str, str]] = {
    "database": (
        "the project's migrations have been applied to that database, its data lives there, and "
        "the driver and column types follow it; render a new project for the other database and "
        "move the data and your code over"
    ),
}
"""Answers an update never changes, and why."""

CAPABILITIES: Final[Mapping[str, tuple[object, str]]] = {
    "auth": ("jwt", "users, refresh tokens and the items' owner column"),
    "multi_tenant": (True, "organizations, memberships, invitations, API keys and items' tenant"),
}
"""Answers that switch a capability on (the value that does), and the schema it brings. An
update may switch one on (its migration revisions come with it) but never off: its tables and
columns are in the database, and the applied revisions that made them would be deleted."""

REVISION_FEATURES: Final[Mapping[str, str]] = {
    "email": "account tokens (revision email_0001)",
    "billing": "billable accounts and Stripe events (revision billing_0001)",
    "audit": "audit log (revision audit_0001)",
    "oidc": "identities at OpenID providers (revision oidc_0001)",
    "totp": "two-factor secrets and recovery codes (revision totp_0001)",
}
"""The features with migration revisions of their own (rendered with `auth=jwt`), and the schema
each brings: like a capability, an update may add one to `features` but never remove it."""


def _is_on(name: str, value: object, on: object) -> bool:
    """Whether `value` switches the capability `name` on; a yes/no answer must be a YAML
    boolean (`parse_yes_no`, the parser the template's hook uses too)."""
    if isinstance(on, bool):
        return value is not None and parse_yes_no(value, name) == on
    return value == on


def refused_answer_changes(before: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    """One message per answer in `data` that an update must not change, given the answers
    file's `before`; empty when the changes are safe."""
    refused: list[str] = []
    for name, why in FIXED_ANSWERS.items():
        if name in data and name in before and data[name] != before[name]:
            refused.append(
                f"{name}: cannot change from {before[name]!r} to {data[name]!r} in an update: {why}"
            )
    for name, (on, brings) in CAPABILITIES.items():
        if name not in data or not _is_on(name, before.get(name), on):
            continue
        if not _is_on(name, data[name], on):
            refused.append(
                f"{name}: cannot switch off ({before[name]!r} to {data[name]!r}) in an update: "
                f"the database holds its {brings}, made by migration revisions that the update "
                "would delete; keep it on"
            )
    if "features" in data and before.get("auth", "jwt") == "jwt":
        had, keeps = _as_list(before.get("features")), _as_list(data["features"])
        for feature, brings in REVISION_FEATURES.items():
            if feature in had and feature not in keeps:
                refused.append(
                    f"features: cannot switch off {feature} ({had!r} to {keeps!r}) in an update: "
                    f"the database holds its {brings}, made by a migration revision that the "
                    f"update would delete; keep {feature} in features"
                )
    return refused


def _as_list(value: object) -> list[Any]:
    """A multiselect answer as the answers file and `check_data` give it: a list."""
    return list(value) if isinstance(value, list | tuple) else []


def _check_answer_changes(before: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    refused = refused_answer_changes(before, data)
    if refused:
        raise UsageError(
            "refused before changing anything: an update can switch capabilities on, but never "
            "changes the database or switches a capability off:\n  " + "\n  ".join(refused)
        )


# ---------------------------------------------------------------------------------------------
# Conflicts
# ---------------------------------------------------------------------------------------------


def _first_marker_line(path: Path) -> int | None:
    try:
        content = path.read_bytes()
    except OSError:
        return None
    if b"\0" in content:  # binary
        return None
    for number, line in enumerate(content.splitlines(), start=1):
        if line.startswith(_MARKER_STARTS) and line[7:8] in (b"", b" "):
            return number
    return None


def find_conflicts(
    dest: Path,
    *,
    candidates: Iterable[str] | None = None,
    known_rejects: Iterable[str] = (),
    removed: Iterable[str] = (),
) -> list[Conflict]:
    """Every conflict in the project: markers, `.rej` files and unmerged index entries.

    Markers are looked for in `candidates` (paths relative to `dest`), by default every file
    that `git status` shows as changed or new; `known_rejects` are ignored `.rej` files that
    existed before the update and are not reported; `removed` are edited files that the update
    deleted (see `edited_removals`).
    """
    entries = _status(dest)
    if candidates is None:
        candidates = [entry.path for entry in entries if entry.code[1] != "D"]
    found: dict[str, set[ConflictKind]] = {}
    lines: dict[str, int] = {}
    for relative in candidates:
        if relative.endswith(".rej"):
            continue
        line = _first_marker_line(dest / relative)
        if line is not None:
            found.setdefault(relative, set()).add("inline")
            lines[relative] = line
    rejects = {entry.path for entry in entries if entry.path.endswith(".rej")}
    rejects |= _ignored_rejects(dest) - set(known_rejects)
    for reject in rejects:
        found.setdefault(reject.removesuffix(".rej"), set()).add("rej")
    for relative in _unmerged(dest):
        found.setdefault(relative, set()).add("unmerged")
    for relative in removed:
        found.setdefault(relative, set()).add("removed")
    return [
        Conflict(
            path=path,
            kinds=tuple(sorted(kinds, key=_KIND_ORDER.__getitem__)),
            line=lines.get(path),
        )
        for path, kinds in sorted(found.items())
    ]


def _render_old(
    answers: Mapping[str, Any], into: Path, dest: Path, answers_file: str = ANSWERS_FILE
) -> None:
    """Render the template revision and answers of an answers file (no tasks) into `into`.

    A resource's template reads the project's answers (`_external_data`): they are copied in
    first."""
    if answers_file != ANSWERS_FILE:
        into.mkdir(parents=True)
        shutil.copy2(dest / ANSWERS_FILE, into / ANSWERS_FILE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(answers["_src_path"]),
            str(into),
            data={k: v for k, v in answers.items() if not str(k).startswith("_")},
            answers_file=answers_file,
            vcs_ref=str(answers["_commit"]),
            defaults=True,
            unsafe=True,
            quiet=True,
            skip_tasks=True,
        )


def edited_removals(
    dest: Path,
    old_answers: Mapping[str, Any],
    deleted: Iterable[str],
    answers_file: str = ANSWERS_FILE,
) -> list[str]:
    """The `deleted` files (relative to `dest`) whose committed version the user had changed.

    A file counts as changed when HEAD's version differs from what the old template revision
    rendered with `old_answers` (the answers file before the update). When the old revision
    cannot be rendered, every deleted file is reported: a silent loss is worse than a question.
    """
    deleted = sorted(deleted)
    if not deleted:
        return []
    with TemporaryDirectory(prefix="backforge-old-") as tmp:
        old = Path(tmp) / "old"
        try:
            _render_old(old_answers, old, dest, answers_file)
        except Exception:  # any failure: report every deletion rather than guess
            return deleted
        edited = []
        for relative in deleted:
            head = subprocess.run(
                ["git", "show", f"HEAD:./{relative}"], cwd=dest, capture_output=True, check=False
            )
            rendered = old / relative
            if (
                head.returncode != 0
                or not rendered.is_file()
                or rendered.read_bytes() != head.stdout
            ):
                edited.append(relative)
        return edited


# ---------------------------------------------------------------------------------------------
# Installing
# ---------------------------------------------------------------------------------------------


def _lock_and_sync(dest: Path) -> str | None:
    """`uv lock` and `uv sync`; the error message when one fails, else None. Commits nothing."""
    try:
        uv = uv_binary()
        run([uv, "lock", "--quiet"], dest)
        run([uv, "sync", "--quiet"], dest)
    except (CommandError, RuntimeError, OSError) as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------
# The update
# ---------------------------------------------------------------------------------------------


def _questions(worker: Any) -> dict[str, Any] | None:
    """The updated-to template's questions, from the Worker that `copier.run_update` returns."""
    try:
        questions = worker.template.questions_data
    except Exception:  # a courtesy check: Copier's internals may move
        return None
    return dict(questions) if isinstance(questions, Mapping) else None


def _asked(details: Any) -> bool:
    """False for derived values (`when: false`), which no one answers."""
    when = details.get("when", True) if isinstance(details, Mapping) else True
    return not (when is False or (isinstance(when, str) and when.strip().lower() == "false"))


def _failed(dest: Path, message: str) -> UsageError:
    """Restore the project (its tree was clean) and say whether that worked."""
    left = restore(dest)
    if left:
        return UsageError(
            f"{message}\nthe project could not be fully restored; these files differ from "
            "HEAD (`git stash --include-untracked` or `git reset --hard` puts it back):\n  "
            + "\n  ".join(left)
        )
    return UsageError(f"{message}\n(the project was left unchanged)")


def _update_one(
    dest: Path,
    answers_file: str,
    before: Mapping[str, Any],
    *,
    template: str,
    vcs_ref: str | None,
    data: Mapping[str, Any],
    conflict: ConflictMode,
    known_rejects: Iterable[str],
) -> tuple[TemplateUpdate, Any, list[str]]:
    """`copier update` of one answers file (a clean tree): what it did, Copier's Worker, and the
    warnings Copier raised. Raises UsageError, with the project back at HEAD, when Copier fails."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            worker = copier.run_update(
                str(dest),
                data=dict(data),
                answers_file=answers_file,
                defaults=True,
                overwrite=True,
                unsafe=True,
                conflict=conflict,
                vcs_ref=vcs_ref,
                quiet=True,
            )
    except (ValueError, copier.errors.CopierError) as exc:
        prefix = "" if template == "base" else f"{template}: "
        raise _failed(dest, f"{prefix}{exc}") from exc
    except BaseException:
        restore(dest)
        raise
    after = _read_answers(dest, answers_file)
    deleted = [entry.path for entry in _status(dest) if entry.code in (" D", "D ")]
    found = find_conflicts(
        dest,
        known_rejects=known_rejects,
        removed=edited_removals(dest, before, deleted, answers_file),
    )
    conflicts = tuple(
        Conflict(path=c.path, kinds=c.kinds, line=c.line, template=template) for c in found
    )
    done = TemplateUpdate(
        template=template,
        answers_file=answers_file,
        from_version=str(before["_commit"]),
        to_version=str(after["_commit"]),
        conflicts=conflicts,
    )
    messages = [
        str(w.message) for w in caught if issubclass(w.category, copier.errors.CopierWarning)
    ]
    return done, worker, messages


def _head(dest: Path) -> str:
    return _git_out(dest, "rev-parse", "HEAD").strip()


def _step_commit(dest: Path, template: str) -> None:
    """Commit what the last template's update did, so that Copier (which refuses a dirty tree)
    can update the next one; `_uncommit` takes every such commit back."""
    if _status(dest):
        git_commit(dest, f"backforge update: {template} (taken back when the update ends)")


def _uncommit(dest: Path, start: str) -> None:
    """Move the branch back to `start`, keeping the work tree and leaving every change unstaged
    (as one `copier update` does), except unmerged entries, which say where conflicts are."""
    if _head(dest) == start:
        return
    _git_out(dest, "update-ref", "HEAD", start)
    unmerged = _unmerged(dest)
    staged = [
        path
        for path in _split_z(_git_out(dest, "diff", "--cached", "--name-only", "-z", start))
        if path not in unmerged
    ]
    if staged:
        subprocess.run(
            ["git", "reset", "--quiet", "--pathspec-from-file=-", "--pathspec-file-nul", start],
            cwd=dest,
            input="\0".join(staged),
            text=True,
            capture_output=True,
            check=True,
        )


def update_project(
    dest: Path,
    *,
    vcs_ref: str | None = None,
    data: Mapping[str, Any] | None = None,
    conflict: ConflictMode = "inline",
    install: bool = True,
    resources: Mapping[str, str | None] | None = None,
) -> UpdateResult:
    """Update the project in `dest` to template revision `vcs_ref` (default: the latest tag),
    then each resource in `resources` (answers file → revision to update it to; None: its
    source's latest tag), in order.

    `data` changes or adds answers of the base template (values as Copier takes them, e.g. from
    `parse_data`). Raises UsageError, with the project unchanged, when `dest` is not a clean git
    repository rendered by Copier, when `data` changes `database` or switches a capability off
    (see `refused_answer_changes`), when an answer is invalid or unknown, or when Copier fails.
    Returns an `UpdateResult` listing every conflict and the template it came from; a template
    that leaves conflicts stops the update there (later resources are `pending`). Nothing is
    committed: between templates the update commits its work for Copier and takes the commits
    back at the end.
    """
    dest = Path(dest).resolve()
    _check_folder(dest)
    before = _read_answers(dest)
    check_repository(dest)
    source = _check_source(dest, before)
    answers = dict(data or {})
    if answers:
        with template_checkout(source, vcs_ref, at_ref=True) as template:
            project = {key: value for key, value in before.items() if not key.startswith("_")}
            answers = check_data(template, answers, context=project)
    _check_answer_changes(before, answers)
    resource_befores = {name: _read_answers(dest, name) for name in resources or {}}
    for resource_before in resource_befores.values():
        _check_source(dest, resource_before)
    check_clean(dest)
    known_rejects = _ignored_rejects(dest)
    base, worker, caught = _update_one(
        dest,
        ANSWERS_FILE,
        before,
        template="base",
        vcs_ref=vcs_ref,
        data=answers,
        conflict=conflict,
        known_rejects=known_rejects,
    )
    questions = _questions(worker)
    unknown = sorted(key for key in answers if questions is not None and key not in questions)
    if unknown and questions is not None:
        asked = sorted(name for name, details in questions.items() if _asked(details))
        raise _failed(
            dest,
            f"unknown question(s) given with -d: {', '.join(unknown)}; the template asks "
            f"{', '.join(asked)}",
        )
    done = [base]
    pending = list(resources or {})
    start = _head(dest)
    try:
        while pending and not done[-1].conflicts:
            answers_file = pending.pop(0)
            resource_before = resource_befores[answers_file]
            _step_commit(dest, done[-1].template)
            update, _, messages = _update_one(
                dest,
                answers_file,
                resource_before,
                template=f"resource {resource_before.get('resource', answers_file)}",
                vcs_ref=(resources or {})[answers_file],
                data=resource_update_data(_read_answers(dest), resource_before),
                conflict=conflict,
                known_rejects=known_rejects,
            )
            done.append(update)
            caught += messages
    except BaseException:
        _git_out(dest, "update-ref", "HEAD", start)
        restore(dest)
        raise
    finally:
        _uncommit(dest, start)
    conflicts = tuple(c for update in done for c in update.conflicts)
    installed = False
    install_error: str | None = None
    if install and not conflicts:
        install_error = _lock_and_sync(dest)
        installed = install_error is None
    entries = _status(dest)
    return UpdateResult(
        dest=dest,
        from_version=base.from_version,
        to_version=base.to_version,
        changed=tuple(sorted({entry.path for entry in entries})),
        conflicts=conflicts,
        installed=installed,
        install_error=install_error,
        warnings=tuple(dict.fromkeys(caught)),
        templates=tuple(done),
        pending=tuple(pending),
    )
