"""The student's own analysis step: summarise svd-map's per-seed alignments.

Reads the CSV `ci-worker svd-map --csv` writes (nrow, ncol, seed, v_alignment, ve000, ...)
and writes summary.json: how many seeds, and the mean, sd and worst of |v_alignment|
(1 means the estimate is the true v up to sign).
"""
import argparse
import csv
import json
import os
import statistics
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="svd-map's CSV")
    parser.add_argument("--out", default="summary", help="folder for summary.json")
    args = parser.parse_args()
    try:
        with open(args.csv, newline="") as f:
            alignments = [abs(float(row["v_alignment"])) for row in csv.DictReader(f)]
    except (OSError, KeyError, ValueError) as error:
        sys.exit(f"analysis.py: cannot read alignments from {args.csv}: {error}")
    if not alignments:
        sys.exit(f"analysis.py: {args.csv} has no seeds")
    summary = {
        "seeds": len(alignments),
        "mean_abs_alignment": statistics.fmean(alignments),
        "sd_abs_alignment": statistics.stdev(alignments) if len(alignments) > 1 else 0.0,
        "worst_abs_alignment": min(alignments),
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"analysis.py: {summary['seeds']} seeds, mean |alignment| {summary['mean_abs_alignment']:.6f}, "
          f"worst {summary['worst_abs_alignment']:.6f}")


if __name__ == "__main__":
    main()
