"""Batch model that takes a --scale argument from the job's args.

AIP_BATCH_INPUT_URIS  comma-separated paths of the staged input files
AIP_BATCH_OUTPUT_DIR  a writable, empty directory for the results

Each input file is a JSON array of {"id": ..., "value": ...} objects; the
result for it is written to AIP_BATCH_OUTPUT_DIR/<same file name> as a JSON
object {id: value * scale}.
"""
import argparse
import json
import os
import sys


def require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        print(f"error: environment variable {name} is not set", file=sys.stderr)
        sys.exit(2)
    return value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Scale every value in the batch inputs.")
    parser.add_argument("--scale", type=int, default=2, help="multiplier (default: 2)")
    args = parser.parse_args(argv)

    input_paths = [p.strip() for p in require_env("AIP_BATCH_INPUT_URIS").split(",") if p.strip()]
    output_dir = require_env("AIP_BATCH_OUTPUT_DIR")
    if not input_paths:
        print("error: AIP_BATCH_INPUT_URIS lists no files", file=sys.stderr)
        sys.exit(2)

    print(f"scale = {args.scale}", flush=True)
    for path in input_paths:
        print(f"reading {path}", flush=True)
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
        result = {item["id"]: item["value"] * args.scale for item in items}
        out_path = os.path.join(output_dir, os.path.basename(path))
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"wrote {len(result)} predictions to {out_path}", flush=True)


if __name__ == "__main__":
    main()
