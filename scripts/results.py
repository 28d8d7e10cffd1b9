#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the framed guest output of scripts/guest/run-tests into results.

KUnit sections are parsed with the kernel's own KTAP parser
(tools/testing/kunit/kunit_parser.py); kselftest sections are TAP.  Every
test case becomes one line "PASS|FAIL|SKIP<TAB>name<TAB>detail" appended to
the ledger; a program that crashes, exits non-zero without a failing case
or runs fewer cases than it planned adds a FAIL of its own.

Usage: results.py TREE PREFIX OUTPUT LEDGER
"""
import re
import sys


def kunit_results(tree, prefix, suite, lines, emit):
    sys.path.insert(0, f"{tree}/tools/testing/kunit")
    import io
    import kunit_parser
    import kunit_printer
    # The parser prints its own summary; this script reports every case.
    kunit_parser.stdout = kunit_printer.Printer(io.StringIO())
    test = kunit_parser.parse_run_tests(lines)
    status = kunit_parser.TestStatus

    def walk(t, path):
        if t.subtests:
            for sub in t.subtests:
                walk(sub, path + [sub.name])
            if t.status == status.TEST_CRASHED:
                emit("FAIL", "/".join(path), "crashed")
            return
        name = "/".join(path)
        if t.status == status.SUCCESS:
            emit("PASS", name, "")
        elif t.status == status.SKIPPED:
            emit("SKIP", name, "")
        else:
            emit("FAIL", name, t.status.name)
    if not test.subtests:
        emit("FAIL", f"{prefix}/kunit/{suite}", "no KTAP results")
    for sub in test.subtests:
        walk(sub, [prefix, "kunit", sub.name])


def tap_results(prefix, prog, lines, rc, emit):
    plan, ran, failed = None, 0, 0
    for line in lines:
        m = re.match(r"1\.\.(\d+)", line)
        if m and plan is None:
            plan = int(m[1])
            continue
        m = re.match(r"(not ok|ok) \d+ (.*?)(?:\s+#\s*(SKIP|TODO)\b(.*))?$",
                     line)
        if not m:
            continue
        ran += 1
        name = f"{prefix}/{prog}/{m[2].strip()}"
        if m[3] == "SKIP":
            emit("SKIP", name, (m[4] or "").strip())
        elif m[1] == "ok":
            emit("PASS", name, "")
        else:
            failed += 1
            emit("FAIL", name, "")
    if rc is None:
        emit("FAIL", f"{prefix}/{prog}", "did not finish (guest died?)")
    elif plan is not None and ran < plan:
        emit("FAIL", f"{prefix}/{prog}", f"ran {ran} of {plan} planned cases")
    elif rc not in (0, 4) and not failed:
        emit("FAIL", f"{prefix}/{prog}", f"exit status {rc}")
    elif ran == 0 and rc == 0:
        emit("FAIL", f"{prefix}/{prog}", "reported no test case")


def main():
    tree, prefix, output, ledger = sys.argv[1:5]
    out = open(ledger, "a")

    def emit(status, name, detail):
        out.write(f"{status}\t{name}\t{detail}\n")
        print(f"{status:4} {name}" + (f" ({detail})" if detail else ""))

    sections = []
    for line in open(output, errors="replace"):
        line = line.rstrip("\r\n")
        m = re.match(r"=== (kunit|selftest|exit|kunit-load-failed|done)"
                     r"(?: (\S+))?(?: (-?\d+))?$", line)
        if m:
            kind, name, rc = m[1], m[2], m[3]
            if kind in ("kunit", "selftest"):
                sections.append({"kind": kind, "name": name, "lines": [],
                                 "rc": None})
            elif kind == "exit" and sections:
                sections[-1]["rc"] = int(rc)
            elif kind == "kunit-load-failed":
                emit("FAIL", f"{prefix}/kunit/{name}", "modprobe failed")
            continue
        if sections:
            sections[-1]["lines"].append(line)
    for s in sections:
        if s["kind"] == "kunit":
            kunit_results(tree, prefix, s["name"], s["lines"], emit)
        else:
            tap_results(prefix, s["name"], s["lines"], s["rc"], emit)


if __name__ == "__main__":
    main()
