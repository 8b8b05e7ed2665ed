#!/usr/bin/env bash
# Renders one table of a bench results TSV as a standalone SVG chart (no fonts, scripts or
# other files referenced; the same input gives the same bytes). The renderer is bench/plot.awk.
#
#   bash bench/plot.sh --kind bar|line --table NAME [--series A,B,...] --title TEXT
#     --xlabel TEXT [--ylabel TEXT] [--xlog] RESULTS.tsv OUT.svg
#
# The TSV (written by the bench scripts through perf_save in bench/lib.sh, into docs/perf/) is
# "long": every measured value on its own line, so one file holds all of a script's tables.
#
#   # script: bench/webhook-load.sh           <- "# key: value" comments, shown in the caption:
#   # date: 2026-11-27 22:10 UTC                 script, date, commit, load, and any number of
#   # commit: 76892c9 (tree with uncommitted changes)     note lines
#   # load: before: load average 0.31 0.40 0.52, 3% busy over 2 s; after: ...
#   table	row	series	value	unit           <- this header, exactly (tab-separated)
#   latency	500/s	p50	1.07	ms
#   latency	500/s	p99	1.89	ms
#
# bar:  horizontal grouped bars; one group per row, one bar per series, the value at its end;
#       --xlabel names the value axis (the unit is appended), --ylabel the categories.
# line: rows are numbers (the x values, sorted); one line per series; --xlabel names the x axis
#       with its unit, --ylabel the value axis (the unit is appended); --xlog for a log x axis.
# --series picks and orders the series (default: all, in order of first appearance). Every
# value of the chosen table and series must have the same unit.
#
# Fails (exit 2, a message naming the file and line, no output file written) on a line without
# exactly 5 tab-separated columns, a value that is not a number, a missing header, an unknown
# table or series, mixed units, a duplicate row/series pair, a negative value, or (line) a row
# that is not a number.
set -euo pipefail
export LC_ALL=C
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
kind="" table="" series="" title="" xlabel="" ylabel="" xlog=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kind) kind=${2:?--kind needs a value}; shift 2 ;;
    --table) table=${2:?--table needs a value}; shift 2 ;;
    --series) series=${2:?--series needs a value}; shift 2 ;;
    --title) title=${2:?--title needs a value}; shift 2 ;;
    --xlabel) xlabel=${2:?--xlabel needs a value}; shift 2 ;;
    --ylabel) ylabel=${2:?--ylabel needs a value}; shift 2 ;;
    --xlog) xlog=1; shift ;;
    -h | --help) usage ;;
    --*) echo "plot: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "plot: expected RESULTS.tsv OUT.svg after the options" >&2; usage; }
tsv=$1 out=$2
if [ -z "$kind" ] || [ -z "$table" ] || [ -z "$title" ] || [ -z "$xlabel" ]; then
  echo "plot: --kind, --table, --title and --xlabel are required" >&2
  usage
fi
[ -r "$tsv" ] || { echo "plot: cannot read $tsv" >&2; exit 2; }

# Written next to OUT and renamed on success, so a failed render never leaves a half SVG.
tmp="$out.part.$$"
trap 'rm -f "$tmp"' EXIT
awk -v kind="$kind" -v want="$table" -v series_sel="$series" -v title="$title" -v xlabel="$xlabel" \
  -v ylabel="$ylabel" -v xlog="$xlog" -v src="$tsv" -f "$here/plot.awk" "$tsv" >"$tmp"
mv "$tmp" "$out"
