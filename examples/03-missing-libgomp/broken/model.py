"""Batch model that needs the GNU OpenMP runtime (libgomp.so.1).

Loading libgomp.so.1 with ctypes stands in for importing LightGBM, XGBoost
or an OpenMP build of scikit-learn: their wheels link against libgomp, which
slim Debian-based images (python:3.11-slim) do not ship.

AIP_BATCH_INPUT_URIS  comma-separated paths of the staged input files
AIP_BATCH_OUTPUT_DIR  a writable, empty directory for the results

Each input file is a JSON array of {"id": ..., "value": ...} objects; the
result for it is written to AIP_BATCH_OUTPUT_DIR/<same file name> as a JSON
object {id: value * 2}.
"""
import ctypes
import json
import os
import sys

# Fails at start-up with
#   OSError: libgomp.so.1: cannot open shared object file: No such file or directory
# when the library is not installed in the image.
_LIBGOMP = ctypes.CDLL("libgomp.so.1")


def require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        print(f"error: environment variable {name} is not set", file=sys.stderr)
        sys.exit(2)
    return value


def main() -> None:
    threads = _LIBGOMP.omp_get_max_threads()
    print(f"libgomp loaded, omp_get_max_threads() = {threads}", flush=True)

    input_paths = [p.strip() for p in require_env("AIP_BATCH_INPUT_URIS").split(",") if p.strip()]
    output_dir = require_env("AIP_BATCH_OUTPUT_DIR")
    if not input_paths:
        print("error: AIP_BATCH_INPUT_URIS lists no files", file=sys.stderr)
        sys.exit(2)

    for path in input_paths:
        print(f"reading {path}", flush=True)
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
        result = {item["id"]: item["value"] * 2 for item in items}
        out_path = os.path.join(output_dir, os.path.basename(path))
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"wrote {len(result)} predictions to {out_path}", flush=True)


if __name__ == "__main__":
    main()
