"""Broken batch model: reads and writes hard-coded paths.

This works on a laptop where someone copied the data to /data/input.json,
but a Vertex AI batch job never puts anything there: the staged inputs are
listed in AIP_BATCH_INPUT_URIS and the results must go to
AIP_BATCH_OUTPUT_DIR. Under vbe (and on Vertex) this dies with
FileNotFoundError.
"""
import json

INPUT_PATH = "/data/input.json"
OUTPUT_PATH = "/data/output.json"


def main() -> None:
    print(f"reading {INPUT_PATH}", flush=True)
    with open(INPUT_PATH, encoding="utf-8") as f:
        items = json.load(f)
    result = {item["id"]: item["value"] * 2 for item in items}
    with open(OUTPUT_PATH, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(result)} predictions to {OUTPUT_PATH}", flush=True)


if __name__ == "__main__":
    main()
