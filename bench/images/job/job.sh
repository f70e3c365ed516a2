#!/bin/sh
# The file-contract job of the benchmark. BENCH_MODE=one writes one small file into
# $AIP_BATCH_OUTPUT_DIR; BENCH_MODE=gen writes BENCH_FILES files of BENCH_FILE_BYTES bytes
# each under $AIP_BATCH_OUTPUT_DIR/data (one busybox awk process, no fork per file).
set -e
out="${AIP_BATCH_OUTPUT_DIR:?AIP_BATCH_OUTPUT_DIR is not set}"
case "${BENCH_MODE:-one}" in
  one)
    echo ok > "$out/result.txt"
    ;;
  gen)
    mkdir -p "$out/data"
    awk -v n="${BENCH_FILES:?}" -v size="${BENCH_FILE_BYTES:?}" -v dir="$out/data" 'BEGIN {
      s = "x"; while (length(s) < size) s = s s; s = substr(s, 1, size)
      for (i = 0; i < n; i++) { f = sprintf("%s/f%06d", dir, i); printf "%s", s > f; close(f) }
    }'
    ;;
  *)
    echo "unknown BENCH_MODE ${BENCH_MODE}" >&2
    exit 2
    ;;
esac
