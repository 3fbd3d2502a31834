"""`python -m rog report pipeline [--check] | tables [NAME ...] | claims | projection [--jobs J] | html [--out DIR]
| fidelity [--profile P] [--dataset-root DIR] | freshness | pages`

pipeline: write dvc.yaml from params.yaml's registry (--check: only say whether it is current; exit 1
if not). tables: print the tables (ours beside the paper's) from results/experiments/*/metrics.json.
claims: print which of the paper's claims our results reproduce. projection: print each run's recorded
(or estimated) training and evaluation seconds and the pipeline's projected wall time with J experiments
side by side (rog.pipeline.projection; exit 1 when no run has recorded timings). html: every executed
notebook below ROOT/results/notebooks as static HTML in --out, with index.html (rog.report.html).
fidelity: LT-Glyphs beside LVIS v1 on what decides whether the baselines behave as on LVIS (the profile's
rendered training set, default out/pipeline/<profile>/dataset; the baselines' APr / APf from results/;
rog.report.fidelity). freshness: write ROOT/results/freshness.json, whether each run in results/ was made
with the params params.yaml gives now (rog.pipeline.freshness; the pages read it). pages: each executed
notebook below ROOT/results/notebooks with its words of prose, widest table and figures (the overview's caps:
rog.report.overview.MAX_WORDS, rog.report.markdown.MAX_COLUMNS).
"""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("pipeline", "tables", "claims", "projection", "html", "fidelity", "freshness",
                                                 "pages"))
    parser.add_argument("names", nargs="*", help="tables to print (default: all)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--check", action="store_true", help="pipeline: compare only, exit 1 when stale")
    parser.add_argument("--root", default=".", help="folder holding results/ (default: .)")
    parser.add_argument("--jobs", type=int, default=2, help="projection: experiments side by side (default: 2)")
    parser.add_argument("--ladder", default=None, metavar="REGIME",
                        help="projection: estimate every run from this fidelity-ladder regime's recorded runs")
    parser.add_argument("--out", default="out/html", help="html: folder to write the pages into (default: out/html)")
    parser.add_argument("--profile", default=None, help="fidelity: the profile (default: params.yaml's `profile`)")
    parser.add_argument("--dataset-root", default=None,
                        help="fidelity: the rendered training set (default: out/pipeline/<profile>/dataset)")


def run(args: argparse.Namespace) -> int:
    from rog.config import ParamsError
    from rog.pipeline import dvcyaml
    from rog.pipeline.registry import read_params, sections
    from rog.report import claims, tables

    try:
        if args.what == "pipeline":
            current = dvcyaml.write(args.params, "dvc.yaml", check=args.check)
            if args.check and not current:
                print("rog report: dvc.yaml is not current; run `python -m rog report pipeline`", file=sys.stderr)
                return 1
            print("dvc.yaml is current" if current else "dvc.yaml written")
            return 0
        if args.what == "html":
            from pathlib import Path

            from rog.report import html
            try:
                pages = html.build(Path(args.root) / "results" / "notebooks", args.out)
            except ValueError as err:  # a notebook nbformat cannot read
                print(f"rog report html: {err}", file=sys.stderr)
                return 2
            print(f"{len(pages)} pages and the index written to {Path(args.out) / 'index.html'}")
            return 0
        if args.what == "projection":
            from rog.pipeline import projection
            try:
                reference = projection.ladder_reference(args.ladder, args.root) if args.ladder else None
                if reference:
                    print(f"every run estimated from ladder regime '{args.ladder}' ({reference['runs']} runs)")
                print(projection.text(projection.projection(args.params, args.root, args.jobs, reference)), end="")
            except projection.ProjectionError as err:
                print(f"rog report projection: {err}", file=sys.stderr)
                return 1
            return 0
        params = read_params(args.params)
        if args.what == "fidelity":
            from rog.config import profile_name
            from rog.report import fidelity

            profile = profile_name(params, args.profile)
            root = args.dataset_root or f"out/pipeline/{profile}/dataset"
            table = fidelity.profile_rows(params, profile, root, args.root)
            print(f"Fidelity, profile {profile} (training set {root}):\n\n" + fidelity.markdown(table), end="")
            return 0
        if args.what == "pages":
            from pathlib import Path

            from rog.report import markdown

            folder = Path(args.root) / "results" / "notebooks"
            print(f"{'words':>6} {'widest':>6} {'figures':>7}  page")
            for path in sorted(folder.rglob("*.ipynb")):
                found = markdown.page_measures(json.loads(path.read_text()))
                print(f"{found['words']:>6} {found['widest']:>6} {found['figures']:>7}  {path.relative_to(folder)}")
            return 0
        if args.what == "freshness":
            from rog.pipeline import freshness

            path = freshness.write(params, args.root)
            states = [r["state"] for r in json.loads(path.read_text()).values()]
            print(f"{path}: " + ", ".join(f"{states.count(s)} {s}" for s in freshness.STATES))
            return 0
        if args.what == "claims":
            print(claims.claims_markdown(claims.claims(params, args.root)), end="")
            if "table3" in sections(params):  # Table 3's claim is judged on the K sweep, not on a pair of rows
                print("- **" + claims.k_sweep_claim(tables.build_k_sweep(params, args.root), args.root)
                      .replace(": ", "**: ", 1))
            return 0
        for name in args.names or [n for n in sections(params) if not n.startswith("figure")]:
            if name == "table3":
                print(tables.k_sweep_markdown(tables.build_k_sweep(params, args.root)))
            else:
                print(f"## {name}\n\n" + tables.markdown(tables.build(params, name, args.root)))
    except (ParamsError, KeyError, FileNotFoundError) as err:
        print(f"rog report: {err}", file=sys.stderr)
        return 2
    return 0
