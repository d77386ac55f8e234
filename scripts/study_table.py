#!/usr/bin/env python3
"""Prints the study table of docs/study.md from committed run records, next to the study's reported figures.

    python3 scripts/study_table.py docs/runs/study-2026-12-01-45ce81e [MORE RUN FOLDERS...]
    python3 scripts/study_table.py --seeds docs/runs/seeds-A[,seeds-B...] docs/runs/study-...   # the seed-spread table

Each folder holds a study's results.csv (as `cnnlab study` writes it; scripts/study_at_head.sh and
scripts/seed_spread.sh copy them into docs/runs/) and run.txt (commit, machine). A model found in several
folders is taken from the first. The study's own figures come from docs/study-reported.csv. Rows are sorted by
cnnlab's accuracy, as `cnnlab study` sorts them; the last column names the folder of each row's record.
Standard library only.
"""
import csv
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def reported():
    with open(os.path.join(ROOT, "docs", "study-reported.csv"), newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {r["model"]: r for r in rows}


def run_info(folder):
    info = {}
    path = os.path.join(folder, "run.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(": ")
                info[key.strip()] = value.strip()
    return info


def results(folders):
    found = {}
    for folder in folders:
        path = os.path.join(folder, "results.csv")
        if not os.path.exists(path):
            sys.exit(f"study_table.py: {path} is missing")
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                found.setdefault(r["model"], (r, folder))
    return found


def spec_epochs(model):
    """The epochs a model's spec asks for (models/seed/ or models/extra/), or None."""
    for sub in ("seed", "extra"):
        path = os.path.join(ROOT, "models", sub, model + ".spec")
        if os.path.exists(path):
            with open(path) as f:
                m = re.search(r"^fit:.*\bepochs=(\d+)", f.read(), re.M)
            return int(m.group(1)) if m else None
    return None


def capped(model, r, info):
    """(ran, asked) when the run stopped at an --epochs cap below its spec's epochs, else None. Records of
    binaries before the stop reason said so are recognised by their command's --epochs."""
    asked = spec_epochs(model)
    ran = int(r["epochs"])
    m = re.search(r"--epochs (\d+)", info.get("command", ""))
    cap = r["stop_reason"].startswith("capped") or (
        m and r["stop_reason"] == "reached the last epoch" and int(m.group(1)) == ran)
    return (ran, asked) if cap and asked and ran < asked else None


def fmt_delta(ours, theirs):
    if not theirs:
        return "—"
    d = ours - float(theirs)
    return f"{'+' if d >= 0 else '−'}{abs(d):.2f}"


def seed_table(seeds_folder, study_folders):
    """One row per model of the seed runs: seed 1 from the study's records, the other seeds from theirs."""
    runs = {}
    paths = [p for f in seeds_folder.split(",") for p in glob.glob(os.path.join(f, "*-seed*", "metrics.json"))]
    for path in sorted(paths):
        model, seed = re.match(r"(.*)-seed(\d+)$", os.path.basename(os.path.dirname(path))).groups()
        with open(path) as f:
            runs.setdefault(model, {})[int(seed)] = 100 * json.load(f)["test_accuracy"]
    study = results(study_folders) if study_folders else {}
    ref = reported()
    print("| model | study acc % | cnnlab acc % by seed | cnnlab mean | seeds |")
    print("|---|---:|---|---:|---:|")
    for model, by_seed in sorted(runs.items()):
        if model in study:
            by_seed.setdefault(1, 100 * float(study[model][0]["accuracy"]))
        accs = [by_seed[k] for k in sorted(by_seed)]
        cells = " / ".join(f"{a:.2f} (seed {k})" for k, a in sorted(by_seed.items()))
        print(f"| {model} | {ref.get(model, {}).get('accuracy', '—')} | {cells} | {sum(accs) / len(accs):.2f} "
              f"| {len(accs)} |")


def main(folders):
    if not folders:
        sys.exit(__doc__)
    if folders[0] == "--seeds":
        return seed_table(folders[1], folders[2:])
    ref = reported()
    rows = sorted(results(folders).items(), key=lambda kv: -float(kv[1][0]["accuracy"]))
    print("| model | study acc % | cnnlab acc % | Δ | study ROC-AUC | cnnlab ROC-AUC | epochs (study / cnnlab) "
          "| best epoch (study / cnnlab) | s/epoch | stopped by | record |")
    print("|---|---:|---:|---:|---:|---:|---|---|---:|---|---|")
    for model, (r, folder) in rows:
        s = ref.get(model, {})
        acc = 100 * float(r["accuracy"])
        name = model + (" *(substitute)*" if s.get("code") == "unknown" else "")
        # A VGG16 base trained from random weights is not the study's ImageNet transfer: no difference shown.
        random_base = "NOT ImageNet" in r.get("weights", "")
        if random_base:
            name += " **[random base, NOT ImageNet]**"
        delta = "n/a" if random_base else fmt_delta(acc, s.get("accuracy"))
        stop = r["stop_reason"]
        cap = capped(model, r, run_info(folder))
        if cap:
            # A capped run is not a result: no difference, and the time a whole run would take at most.
            name += f" **[capped: {cap[0]} of {cap[1]} epochs]**"
            delta = "n/a"
            hours = cap[1] * float(r["seconds_per_epoch"]) / 3600
            stop = f"capped by `--epochs {cap[0]}`; {cap[1]} epochs would take up to ≈ {hours:.1f} h at this rate"
        print(f"| {name} | {s.get('accuracy', '—')} | {acc:.2f} | {delta} "
              f"| {s.get('roc_auc') or '—'} | {float(r['roc_auc_ovo']):.4f} "
              f"| {s.get('epochs', '—')} / {r['epochs']} | {s.get('best_epoch', '—')} / {r['best_epoch']} "
              f"| {float(r['seconds_per_epoch']):.1f} | {stop} | `{os.path.relpath(folder, ROOT)}` |")
    print()
    for folder in folders:
        i = run_info(folder)
        print(f"- `{os.path.relpath(folder, ROOT)}`: commit `{i.get('commit', '?')[:7]}`, {i.get('date', '?')}, "
              f"{i.get('machine', '?')}; `{i.get('command', '?')}`")


if __name__ == "__main__":
    main(sys.argv[1:])
