#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write edits made in the assembled tree back to the repository.

The assembled tree (build/linux) has one commit per stanza of
patches/series.  Change the series there, then run this (make refresh):

  - edits of the series' new files made in the repository are carried
    into the tree first (an edit on both sides is refused);
  - edits not yet committed go into the commit that last touched each
    file (git commit --fixup + rebase --autosquash); commit them yourself
    (git commit --fixup=<commit>, git rebase -i) to choose another one;
  - every commit's changes to stock files are written back to the Patch:
    files of its stanza (a stock file no patch covered yet goes to the
    stanza's first Patch:), and the files its stanza lists under Files:
    are copied back to the repository.

make tree then rebuilds the same tree from the repository.

Usage: refresh.py --tree DIR [--repo DIR]
"""

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tree import TreeError, git, parse_series  # noqa: E402


def patch_paths(path):
    """The kernel files a patch file changes."""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                m = re.match(r"diff --git a/(\S+) b/", line)
                if m:
                    out.append(m[1])
    return out


def sync_new_files(tree, repo):
    """Bring edits of new files made in the repository into the tree.

    A file listed under Files: lives in both places; an edit on one side
    is carried to the other, an edit on both sides is refused.
    """
    for s in parse_series(os.path.join(repo, "patches", "series")):
        for f in s["files"]:
            repo_text = open(os.path.join(repo, f), "rb").read()
            head = subprocess.run(["git", "-C", tree, "show", f"HEAD:{f}"],
                                  capture_output=True).stdout
            work_path = os.path.join(tree, f)
            work = open(work_path, "rb").read() \
                if os.path.exists(work_path) else None
            if repo_text in (head, work):
                continue
            if work != head:
                raise TreeError(f"{f} was changed both in the repository "
                                "and in the tree")
            with open(work_path, "wb") as fh:
                fh.write(repo_text)


def fold_worktree(tree):
    """Commit uncommitted edits as fixups of the commits they belong to."""
    changed = git(tree, "diff", "--name-only", "HEAD").split()
    untracked = git(tree, "ls-files", "--others", "--exclude-standard").split()
    if untracked:
        raise TreeError("new files in the tree: add them to a commit "
                        "first: " + ", ".join(untracked))
    if changed:
        commit_fixups(tree, changed)
    if git(tree, "log", "--format=%s", "base..HEAD").count("fixup! "):
        git(tree, "rebase", "-q", "-i", "--autosquash", "base",
            env={"GIT_SEQUENCE_EDITOR": "true", "GIT_EDITOR": "true"})


def commit_fixups(tree, changed):
    """Commit each edited file as a fixup of the last commit touching it."""
    targets = {}
    for path in changed:
        commit = git(tree, "log", "-1", "--format=%H", "base..HEAD", "--",
                     path)
        if not commit:
            raise TreeError(f"{path}: no commit of the series touches it; "
                            "commit it with --fixup= yourself")
        targets.setdefault(commit, []).append(path)
    for commit, paths in targets.items():
        git(tree, "add", "-f", "--", *paths)
        git(tree, "commit", "-q", f"--fixup={commit}")


def write_back(tree, repo):
    series = os.path.join(repo, "patches", "series")
    stanzas = parse_series(series)
    commits = git(tree, "rev-list", "--reverse", "base..HEAD").split()
    if len(commits) != len(stanzas):
        raise TreeError(f"the tree has {len(commits)} commits, "
                        f"patches/series {len(stanzas)}")
    written = []
    for s, c in zip(stanzas, commits):
        subject = git(tree, "log", "-1", "--format=%s", c)
        if subject != s["subject"]:
            raise TreeError(f"commit {c[:12]} is '{subject}', "
                            f"patches/series says '{s['subject']}'")
        touched = git(tree, "diff", "--name-only", f"{c}^", c).split()
        stock = [p for p in touched if p not in s["files"]]
        cover = {}
        for p in s["patches"]:
            for f in patch_paths(os.path.join(repo, "patches", p)):
                cover[f] = p
        groups = {p: [] for p in s["patches"]}
        for f in stock:
            if f in cover:
                groups[cover[f]].append(f)
            elif s["patches"]:
                groups[s["patches"][0]].append(f)
            else:
                raise TreeError(f"'{s['subject']}' changes {f} but has no "
                                "Patch: to put it in")
        for p, files in groups.items():
            dest = os.path.join(repo, "patches", p)
            text = subprocess.run(
                ["git", "-C", tree, "diff", "--no-color", "--no-ext-diff",
                 f"{c}^", c, "--", *files],
                capture_output=True, text=True, check=True).stdout \
                if files else ""
            old = open(dest).read() if os.path.exists(dest) else None
            if text != old:
                with open(dest, "w") as f:
                    f.write(text)
                written.append(f"patches/{p}")
        for f in s["files"]:
            dest = os.path.join(repo, f)
            blob = subprocess.run(["git", "-C", tree, "show", f"{c}:{f}"],
                                  capture_output=True, check=True).stdout
            old = open(dest, "rb").read() if os.path.exists(dest) else None
            if blob != old:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as fh:
                    fh.write(blob)
                written.append(f)
    return written


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", required=True)
    ap.add_argument("--repo", default=os.getcwd())
    args = ap.parse_args()
    tree = os.path.abspath(args.tree)
    try:
        sync_new_files(tree, os.path.abspath(args.repo))
        fold_worktree(tree)
        written = write_back(tree, os.path.abspath(args.repo))
    except (TreeError, subprocess.CalledProcessError) as e:
        print(f"refresh: ERROR: {e}", file=sys.stderr)
        return 1
    for w in written:
        print(f"refresh: wrote {w}")
    if not written:
        print("refresh: the repository already matches the tree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
