#!/usr/bin/env bash
# Copy the training data (BSDS500 train + test) and the monitoring images (Set12, Set5) from
# ../shared into .gpu/data (gitignored), for machines without ../shared. About 31 MB.
# BSDS500 val is NOT copied: it holds the BSD68 test images.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="${SHARED:-../shared}/datasets"
DST=.gpu/data
[ -d "$SRC/BSDS500/data/images/train" ] || { echo "error: $SRC/BSDS500 not found (set SHARED=...)" >&2; exit 1; }
mkdir -p "$DST/BSDS500/train" "$DST/BSDS500/test" "$DST/Set12" "$DST/Set5/HR"
cp "$SRC"/BSDS500/data/images/train/*.jpg "$DST/BSDS500/train/"
cp "$SRC"/BSDS500/data/images/test/*.jpg "$DST/BSDS500/test/"
cp "$SRC"/Set12/*.png "$DST/Set12/"
cp "$SRC"/Set5/HR/*.png "$DST/Set5/HR/"
echo "train: $(ls "$DST/BSDS500/train" | wc -l) + $(ls "$DST/BSDS500/test" | wc -l) images, Set12: $(ls "$DST/Set12" | wc -l); $(du -sh "$DST" | cut -f1) in $DST"
