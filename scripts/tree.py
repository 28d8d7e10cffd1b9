#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Assemble the patch series onto a stock 6.12 tree.

The tree is a git repository: a base commit holding the pristine source,
then one commit per stanza of patches/series.  Commits are built on a
scratch index, so the work tree is touched only where a file's content
changes and kbuild recompiles only what depends on it.

Usage: tree.py --tree DIR [--ksrc DIR | --tarball FILE] [--series FILE]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The assembled tree's commits are the harness's, fixed so that their ids
# are reproducible; make series recommits them in the sender's name.
AUTHOR = "DMA range project <dmabuf-ranges@example.org>"
DATE = "2026-11-20T12:00:00+0000"


class TreeError(Exception):
    pass


def git(tree, *args, env=None, inp=None):
    full_env = dict(os.environ)
    full_env.update({"GIT_AUTHOR_DATE": DATE, "GIT_COMMITTER_DATE": DATE,
                     "GIT_AUTHOR_NAME": AUTHOR.split(" <")[0],
                     "GIT_AUTHOR_EMAIL": AUTHOR.split("<")[1].rstrip(">"),
                     "GIT_COMMITTER_NAME": AUTHOR.split(" <")[0],
                     "GIT_COMMITTER_EMAIL": AUTHOR.split("<")[1].rstrip(">")})
    if env:
        full_env.update(env)
    res = subprocess.run(["git", "-C", tree] + list(args), env=full_env,
                         input=inp, capture_output=True, text=True)
    if res.returncode:
        raise TreeError(f"git {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout.strip()


def parse_series(path):
    """Return a list of {subject, patches, files, body} stanzas."""
    stanzas = []
    cur = None
    in_body = False
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#") and not in_body:
                continue
            if line.startswith("Subject: "):
                cur = {"subject": line[9:].strip(), "patches": [],
                       "files": [], "body": [], "line": lineno}
                stanzas.append(cur)
                in_body = False
                continue
            if cur is None:
                if line.strip():
                    raise TreeError(f"{path}:{lineno}: text before the "
                                    "first Subject:")
                continue
            if not in_body:
                m = re.match(r"(Patch|Files): (.*)$", line)
                if m:
                    key = "patches" if m[1] == "Patch" else "files"
                    cur[key] += m[2].split()
                    continue
                if line.strip():
                    raise TreeError(f"{path}:{lineno}: expected Patch:, "
                                    "Files: or a blank line")
                in_body = True
                continue
            cur["body"].append(line)
    for s in stanzas:
        while s["body"] and not s["body"][-1].strip():
            s["body"].pop()
        if not s["body"]:
            raise TreeError(f"{path}:{s['line']}: '{s['subject']}' has no "
                            "commit message body")
    return stanzas


def failed_hunk(patch, stderr):
    """Name the file and hunk of @patch that git apply rejected."""
    m = re.search(r"patch failed: (.+):(\d+)", stderr)
    if not m:
        m2 = re.search(r"error: (.+): (does not exist in index|"
                       r"already exists in index)", stderr)
        if m2:
            return f"file {m2[1]}: {m2[2]}"
        return stderr.strip()
    fname, start = m[1], int(m[2])
    cur_file, hunk_no = None, 0
    with open(patch) as f:
        for line in f:
            if line.startswith("+++ "):
                cur_file = line[4:].strip()
                cur_file = cur_file[2:] if cur_file.startswith("b/") \
                    else cur_file
                hunk_no = 0
            elif line.startswith("@@ ") and cur_file == fname:
                hunk_no += 1
                h = re.match(r"@@ -(\d+)", line)
                if h and int(h[1]) == start:
                    return f"file {fname}, hunk #{hunk_no}: {line.strip()}"
    return f"file {fname}, hunk at line {start}"


def create_base(tree, ksrc, tarball):
    """Create @tree as a git repository holding the pristine source."""
    if os.path.exists(tree):
        shutil.rmtree(tree)
    os.makedirs(tree)
    if ksrc:
        if os.path.isdir(os.path.join(ksrc, ".git")):
            # A user's git tree: take its committed HEAD, nothing built.
            p = subprocess.Popen(["git", "-C", ksrc, "archive", "HEAD"],
                                 stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", tree], stdin=p.stdout,
                           check=True)
            if p.wait():
                raise TreeError(f"git archive of {ksrc} failed")
        else:
            subprocess.run(["cp", "-a", ksrc + "/.", tree], check=True)
    else:
        subprocess.run(["tar", "-x", "--strip-components=1", "-C", tree,
                        "-f", tarball], check=True)
    if os.path.exists(os.path.join(tree, ".config")):
        raise TreeError(f"{ksrc}: has a .config; give a clean tree "
                        "(make mrproper) or a git tree")
    git(tree, "init", "-q", "-b", "series")
    git(tree, "config", "core.autocrlf", "false")
    git(tree, "config", "gc.auto", "0")
    git(tree, "add", "-A", "-f", ".")
    version = kernel_version(tree)
    git(tree, "commit", "-q", "-m", f"Linux {version}")
    git(tree, "tag", "-f", "base")


def kernel_version(tree):
    vals = {}
    with open(os.path.join(tree, "Makefile")) as f:
        for line in f:
            m = re.match(r"(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION) = ?(.*)",
                         line)
            if m:
                vals[m[1]] = m[2].strip()
            if len(vals) == 4:
                break
    ver = f"{vals['VERSION']}.{vals['PATCHLEVEL']}.{vals['SUBLEVEL']}"
    return ver + vals.get("EXTRAVERSION", "")


def assemble(tree, repo, series):
    """Build the series' commits on base; return the head commit."""
    stanzas = parse_series(series)
    patchdir = os.path.dirname(series)
    claimed = {}
    head = git(tree, "rev-parse", "base^{commit}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        git(tree, "read-tree", head, env=env)
        for s in stanzas:
            for p in s["patches"]:
                path = os.path.join(patchdir, p)
                claimed.setdefault(os.path.relpath(path, repo), s["subject"])
                res = subprocess.run(["git", "-C", tree, "apply", "--cached",
                                      os.path.abspath(path)], env={**os.environ, **env},
                                     capture_output=True, text=True)
                if res.returncode:
                    raise TreeError(f"patches/{p} does not apply "
                                    f"(commit '{s['subject']}'): "
                                    f"{failed_hunk(path, res.stderr)}")
            for f in s["files"]:
                src = os.path.join(repo, f)
                if f in claimed:
                    raise TreeError(f"{f} is in two commits: "
                                    f"'{claimed[f]}' and '{s['subject']}'")
                claimed[f] = s["subject"]
                if not os.path.isfile(src):
                    raise TreeError(f"{f} (commit '{s['subject']}') is "
                                    "not in the repository")
                blob = git(tree, "hash-object", "-w", src)
                mode = "100755" if os.access(src, os.X_OK) else "100644"
                git(tree, "update-index", "--add", "--cacheinfo",
                    f"{mode},{blob},{f}", env=env)
            tree_id = git(tree, "write-tree", env=env)
            msg = s["subject"] + "\n\n" + "\n".join(s["body"]) + "\n"
            head = git(tree, "commit-tree", tree_id, "-p", head, inp=msg)
    return head, claimed


def unclaimed(repo, claimed):
    """Kernel-path files of the repository that no commit names."""
    out = []
    for top in ("drivers", "include", "Documentation", "patches",
                "tools", "lib", "mm"):
        for dirpath, _, files in os.walk(os.path.join(repo, top)):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), repo)
                if rel in ("patches/series", "patches/cover-letter"):
                    continue
                if rel not in claimed:
                    out.append(rel)
    return sorted(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", required=True)
    ap.add_argument("--repo", default=os.getcwd())
    ap.add_argument("--series", default=None)
    ap.add_argument("--ksrc", default=None)
    ap.add_argument("--tarball", default="/usr/src/linux-source-6.12.tar.xz")
    args = ap.parse_args()
    series = args.series or os.path.join(args.repo, "patches", "series")
    tree = os.path.abspath(args.tree)

    if args.ksrc:
        ident = "ksrc:" + os.path.abspath(args.ksrc)
        if os.path.isdir(os.path.join(args.ksrc, ".git")):
            ident += "@" + subprocess.run(
                ["git", "-C", args.ksrc, "rev-parse", "HEAD"],
                capture_output=True, text=True).stdout.strip()
    else:
        st = os.stat(args.tarball)
        ident = f"tarball:{args.tarball}:{st.st_size}:{int(st.st_mtime)}"
    id_file = tree + ".base-id"
    old = open(id_file).read().strip() if os.path.exists(id_file) else None
    try:
        if old != ident or not os.path.isdir(os.path.join(tree, ".git")):
            print(f"tree: creating base in {tree} from {ident}", flush=True)
            create_base(tree, args.ksrc, args.tarball)
            with open(id_file, "w") as f:
                f.write(ident + "\n")
        dirty = git(tree, "status", "--porcelain", "--untracked-files=no")
        if dirty:
            raise TreeError(f"{tree} has edits not in the repository; "
                            "write them back with make refresh first:\n"
                            + dirty)
        head, claimed = assemble(tree, args.repo, series)
        stray = unclaimed(args.repo, claimed)
        if stray:
            raise TreeError("not in patches/series: " + ", ".join(stray))
        if git(tree, "rev-parse", "HEAD") != head:
            git(tree, "reset", "-q", "--hard", head)
    except TreeError as e:
        print(f"tree: ERROR: {e}", file=sys.stderr)
        return 1
    version = kernel_version(tree)
    with open(tree + ".version", "w") as f:
        f.write(version + "\n")
    n = int(git(tree, "rev-list", "--count", "base..HEAD"))
    print(f"tree: Linux {version} + {n} commit(s), head {head[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
