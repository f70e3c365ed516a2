"""Batch model with a native OpenMP extension (/usr/local/lib/libompscale.so).

The extension links against the GNU OpenMP runtime, libgomp.so.1, exactly as the
LightGBM, XGBoost and OpenMP scikit-learn builds do. Loading it in an image without
libgomp1 fails at start-up with
  OSError: libgomp.so.1: cannot open shared object file: No such file or directory

AIP_BATCH_INPUT_URIS  comma-separated paths of the staged input files
AIP_BATCH_OUTPUT_DIR  a writable, empty directory for the results

Each input file is a JSON array of {"id": ..., "value": ...} objects; the result for
it is written to AIP_BATCH_OUTPUT_DIR/<same file name> as a JSON object {id: value * 2}.
"""
import ctypes
import json
import os
import sys

_NATIVE = ctypes.CDLL("/usr/local/lib/libompscale.so")
_NATIVE.ompscale.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_int, ctypes.c_double]


def require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        print(f"error: environment variable {name} is not set", file=sys.stderr)
        sys.exit(2)
    return value


def scale(values, factor):
    array = (ctypes.c_double * len(values))(*values)
    _NATIVE.ompscale(array, len(values), factor)
    return list(array)


def main() -> None:
    print(f"native extension loaded, OpenMP threads = {_NATIVE.ompscale_threads()}", flush=True)
    input_paths = [p.strip() for p in require_env("AIP_BATCH_INPUT_URIS").split(",") if p.strip()]
    output_dir = require_env("AIP_BATCH_OUTPUT_DIR")
    for path in input_paths:
        print(f"reading {path}", flush=True)
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
        scaled = scale([float(item["value"]) for item in items], 2.0)
        result = {item["id"]: int(v) if v.is_integer() else v for item, v in zip(items, scaled)}
        out_path = os.path.join(output_dir, os.path.basename(path))
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"wrote {len(result)} predictions to {out_path}", flush=True)


if __name__ == "__main__":
    main()
