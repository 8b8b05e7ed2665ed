# Renders one table of a bench results TSV (docs/perf/*.tsv) as a standalone SVG; run through
# bench/plot.sh, which documents the options and the input format. POSIX awk with log() (tested
# with mawk 1.3.4), no array iteration with `for (k in a)` (its order is unspecified): the same input
# gives the same bytes.
#
# Variables (-v): kind (bar|line), want (table name), series_sel (comma-separated, optional),
# title, xlabel, ylabel, xlog (1: logarithmic x axis, line charts), src (file name for messages).
#
# Why it refuses instead of guessing: a chart drawn from a half-written or hand-mangled results
# file would look like a result; a wrong column count or a non-number stops it with the line.

function fail(msg) {
  printf "plot: %s:%d: %s\n", src, NR, msg > "/dev/stderr"
  failed = 1
  exit 2
}
function fail_end(msg) {
  printf "plot: %s: %s\n", src, msg > "/dev/stderr"
  failed = 1
  exit 2
}
function is_num(s) { return s ~ /^-?([0-9]+|[0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
function floor_(x) { return (x >= 0 || x == int(x)) ? int(x) : int(x) - 1 }
function ceil_(x) { return -floor_(-x) }
function log10(x) { return log(x) / log(10) }
function pow10(k,   r, i) {
  r = 1
  if (k >= 0) { for (i = 0; i < k; i++) r *= 10 } else { for (i = 0; i < -k; i++) r /= 10 }
  return r
}
function esc(s) {
  gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); gsub(/"/, "\\&quot;", s)
  return s
}
# Text width estimate for a sans-serif font (no font is embedded, so no metrics): ~0.6 em.
function textw(s, size) { return length(s) * size * 0.6 }
# Values: three significant digits, no exponent for the magnitudes benches produce.
function fmt(v,   a) {
  a = v < 0 ? -v : v
  if (a == 0) return "0"
  if (a >= 100) return sprintf("%.0f", v)
  if (a >= 10) return sprintf("%.1f", v)
  if (a >= 1) return sprintf("%.2f", v)
  if (a >= 0.01) return sprintf("%.3f", v)
  return sprintf("%.2g", v)
}
# A "nice" step (1, 2, 2.5 or 5 times a power of ten) giving about five ticks up to max.
function nice_step(max,   raw, mag, n) {
  if (max <= 0) return 0.2
  raw = max / 5
  mag = pow10(floor_(log10(raw)))
  n = raw / mag
  if (n <= 1) return mag
  if (n <= 2) return 2 * mag
  if (n <= 2.5) return 2.5 * mag
  if (n <= 5) return 5 * mag
  return 10 * mag
}
function tickfmt(v, step,   d) {
  d = 0
  while (d < 6 && step * pow10(d) != int(step * pow10(d) + 0.5)) d++
  return sprintf("%." d "f", v)
}
# wrap(text, width_px, size): splits text into wrapped[1..n] at spaces; returns n.
function wrap(text, width, size,   words, nw, i, line, n) {
  nw = split(text, words, " ")
  n = 0; line = ""
  for (i = 1; i <= nw; i++) {
    if (line != "" && textw(line " " words[i], size) > width) { wrapped[++n] = line; line = words[i] }
    else line = (line == "" ? words[i] : line " " words[i])
  }
  if (line != "") wrapped[++n] = line
  return n
}

BEGIN {
  FS = "\t"
  if (kind != "bar" && kind != "line") { printf "plot: --kind must be bar or line, not '%s'\n", kind > "/dev/stderr"; failed = 1; exit 2 }
  nsel = (series_sel == "") ? 0 : split(series_sel, sel, ",")
  header_seen = 0; nrows = 0; ncat = 0; nser = 0; unit = ""; nmeta_note = 0
  palette[1] = "#0072B2"; palette[2] = "#E69F00"; palette[3] = "#009E73"; palette[4] = "#CC79A7"
  palette[5] = "#56B4E9"; palette[6] = "#D55E00"; palette[7] = "#999999"; palette[8] = "#000000"
  dash[1] = ""; dash[2] = "7 3"; dash[3] = "2 3"; dash[4] = "9 3 2 3"
  dash[5] = "4 2"; dash[6] = "1 2"; dash[7] = "12 4"; dash[8] = "5 2 1 2"
}

# Header comments: "# key: value" (script, date, commit, load, note) go into the caption.
/^#/ {
  if (match($0, /^# *[a-z]+: /)) {
    key = substr($0, 1, RLENGTH - 2); sub(/^# */, "", key)
    mval = substr($0, RLENGTH + 1)
    if (key == "note") note[++nmeta_note] = mval
    else meta[key] = mval
  }
  next
}
/^[ \t]*$/ { next }

!header_seen {
  if ($0 != "table\trow\tseries\tvalue\tunit")
    fail("the first line after the comments must be the header 'table<TAB>row<TAB>series<TAB>value<TAB>unit', not '" $0 "'")
  header_seen = 1
  next
}

{
  if (NF != 5) fail(NF " columns, expected 5 (table, row, series, value, unit): '" $0 "'")
  if ($1 == "" || $2 == "" || $3 == "") fail("empty table, row or series name")
  if (!is_num($4)) fail("value '" $4 "' is not a number")
  if ($1 != want) { tables_seen[$1] = 1; next }
  if (nsel > 0) {
    k = 0
    for (i = 1; i <= nsel; i++) if (sel[i] == $3) k = i
    if (k == 0) next
  }
  if ($4 + 0 < 0) fail("value " $4 " is negative: the charts start at 0")
  if (kind == "line" && !is_num($2)) fail("row '" $2 "' is not a number: a line chart's rows are its x values")
  if (kind == "line" && xlog == 1 && $2 + 0 <= 0) fail("row " $2 " is not positive: the x axis is logarithmic")
  if (unit == "") unit = $5
  else if ($5 != unit) fail("unit '" $5 "' differs from '" unit "' earlier in table '" want "': one chart has one value axis")
  if (!($2 in cat_ix)) { cat_ix[$2] = ++ncat; cat[ncat] = $2 }
  if (!($3 in ser_ix)) { ser_ix[$3] = ++nser; ser[nser] = $3 }
  c = cat_ix[$2]; s = ser_ix[$3]
  if ((c, s) in val) fail("row '" $2 "', series '" $3 "' appears twice")
  val[c, s] = $4 + 0
  nrows++
}

END {
  if (failed) exit 2
  if (!header_seen) fail_end("no header line 'table<TAB>row<TAB>series<TAB>value<TAB>unit'")
  if (nrows == 0) fail_end("no values for table '" want "'" (series_sel != "" ? " and series " series_sel : ""))
  # Series in the order asked for, else in the order of first appearance.
  if (nsel > 0) {
    n = 0
    for (i = 1; i <= nsel; i++) {
      if (!(sel[i] in ser_ix)) fail_end("series '" sel[i] "' has no value in table '" want "'")
      order[++n] = ser_ix[sel[i]]
    }
  } else for (i = 1; i <= nser; i++) order[i] = i
  if (nser > 8) fail_end(nser " series: at most 8 can be told apart")

  vmax = 0
  for (c = 1; c <= ncat; c++) for (s = 1; s <= nser; s++) if (((c, s) in val) && val[c, s] > vmax) vmax = val[c, s]
  step = nice_step(vmax)
  axmax = ceil_(vmax / step - 1e-9) * step
  if (axmax <= 0) axmax = step
  unit_txt = (unit == "" || unit == "-") ? "" : " (" unit ")"

  W = 760; pad = 16
  y = 30
  body = ""
  # Title (wrapped), then the legend.
  nt = wrap(title, W - 2 * pad, 16)
  for (i = 1; i <= nt; i++) {
    body = body sprintf("<text x=\"%d\" y=\"%d\" font-size=\"16\" font-weight=\"bold\">%s</text>\n", pad, y, esc(wrapped[i]))
    y += 20
  }
  y += 4
  lx = pad
  for (i = 1; i <= nser; i++) {
    s = order[i]
    w = 24 + textw(ser[s], 12) + 18
    if (lx + w > W - pad && lx > pad) { lx = pad; y += 18 }
    if (kind == "bar")
      body = body sprintf("<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"10\" fill=\"%s\"/>", lx, y - 9, palette[i])
    else
      body = body sprintf("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/><circle cx=\"%d\" cy=\"%d\" r=\"3\" fill=\"%s\"/>", \
        lx, y - 4, lx + 18, y - 4, palette[i], dash[i] == "" ? "" : " stroke-dasharray=\"" dash[i] "\"", lx + 9, y - 4, palette[i])
    body = body sprintf("<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n", lx + 24, y, esc(ser[s]))
    lx += w
  }
  y += 18

  if (kind == "bar") {
    # Horizontal grouped bars: categories down the left, values along the bottom.
    lw = 0
    for (c = 1; c <= ncat; c++) if (textw(cat[c], 12) > lw) lw = textw(cat[c], 12)
    if (lw > 300) lw = 300
    x0 = pad + int(lw) + 10
    x1 = W - pad - 56
    barh = (nser > 4) ? 10 : 14
    gap = 12
    gh = nser * barh + gap
    top = y + 4
    ph = ncat * gh
    scale = (x1 - x0) / axmax
    # Grid and ticks.
    for (t = 0; t <= axmax + step / 2; t += step) {
      tx = x0 + t * scale
      body = body sprintf("<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#dddddd\"/>", tx, top, tx, top + ph)
      body = body sprintf("<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333333\">%s</text>\n", tx, top + ph + 14, tickfmt(t, step))
    }
    for (c = 1; c <= ncat; c++) {
      gy = top + (c - 1) * gh + gap / 2
      body = body sprintf("<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%s</text>\n", x0 - 8, gy + nser * barh / 2 + 4, esc(cat[c]))
      for (i = 1; i <= nser; i++) {
        s = order[i]
        if (!((c, s) in val)) continue
        v = val[c, s]
        by = gy + (i - 1) * barh
        bw = v * scale
        body = body sprintf("<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>%s, %s: %s%s</title></rect>", \
          x0, by, bw, barh - 2, palette[i], esc(cat[c]), esc(ser[s]), fmt(v), esc(unit == "-" ? "" : " " unit))
        body = body sprintf("<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" fill=\"#222222\">%s</text>\n", x0 + bw + 4, by + barh - 4, barh > 10 ? 11 : 9, fmt(v))
      }
    }
    body = body sprintf("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n", x0, top, x0, top + ph)
    body = body sprintf("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n", x0, top + ph, x1, top + ph)
    body = body sprintf("<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n", (x0 + x1) / 2, top + ph + 32, esc(xlabel unit_txt))
    if (ylabel != "")
      body = body sprintf("<text x=\"%d\" y=\"%d\" font-size=\"12\" font-style=\"italic\">%s</text>\n", pad, top - 6, esc(ylabel))
    y = top + ph + 52
  } else {
    # Line chart: rows are x values (sorted), one line per series.
    for (c = 1; c <= ncat; c++) { xs[c] = c }
    for (i = 2; i <= ncat; i++) {
      k = xs[i]; j = i - 1
      while (j >= 1 && cat[xs[j]] + 0 > cat[k] + 0) { xs[j + 1] = xs[j]; j-- }
      xs[j + 1] = k
    }
    ylw = textw(tickfmt(axmax, step), 11)
    x0 = pad + 22 + int(ylw) + 6
    x1 = W - pad - 40
    top = y + 10
    ph = 280
    if (xlog == 1) { lo = log10(cat[xs[1]] + 0); hi = log10(cat[xs[ncat]] + 0) }
    else { lo = cat[xs[1]] + 0; hi = cat[xs[ncat]] + 0 }
    if (hi == lo) { lo -= 1; hi += 1 }
    m = (hi - lo) * 0.06; lo -= m; hi += m
    for (t = 0; t <= axmax + step / 2; t += step) {
      ty = top + ph - t / axmax * ph
      body = body sprintf("<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#dddddd\"/>", x0, ty, x1, ty)
      body = body sprintf("<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" fill=\"#333333\">%s</text>\n", x0 - 6, ty + 4, tickfmt(t, step))
    }
    for (i = 1; i <= ncat; i++) {
      c = xs[i]
      xv = (xlog == 1) ? log10(cat[c] + 0) : cat[c] + 0
      px[c] = x0 + (xv - lo) / (hi - lo) * (x1 - x0)
      body = body sprintf("<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#dddddd\"/>", px[c], top, px[c], top + ph)
      body = body sprintf("<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333333\">%s</text>\n", px[c], top + ph + 14, esc(cat[c]))
    }
    for (i = 1; i <= nser; i++) {
      s = order[i]
      pts = ""
      for (j = 1; j <= ncat; j++) {
        c = xs[j]
        if (!((c, s) in val)) continue
        pts = pts sprintf("%s%.1f,%.1f", pts == "" ? "" : " ", px[c], top + ph - val[c, s] / axmax * ph)
      }
      body = body sprintf("<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", pts, palette[i], dash[i] == "" ? "" : " stroke-dasharray=\"" dash[i] "\"")
    }
    # Markers and value labels; at each x the labels are stacked so they never overlap.
    for (j = 1; j <= ncat; j++) {
      c = xs[j]
      n = 0
      for (i = 1; i <= nser; i++) if ((c, order[i]) in val) { n++; li[n] = i }
      for (a = 2; a <= n; a++) {
        k = li[a]; b = a - 1
        while (b >= 1 && val[c, order[li[b]]] > val[c, order[k]]) { li[b + 1] = li[b]; b-- }
        li[b + 1] = k
      }
      prev = top + ph + 1000
      for (a = 1; a <= n; a++) {
        i = li[a]; s = order[i]
        py = top + ph - val[c, s] / axmax * ph
        ly = py - 6
        if (ly > prev - 13) ly = prev - 13
        prev = ly
        anchor = (j == ncat && ncat > 1) ? "end" : "start"
        lxp = (anchor == "end") ? px[c] - 6 : px[c] + 6
        body = body sprintf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s, %s: %s%s</title></circle>", \
          px[c], py, palette[i], esc(cat[c]), esc(ser[s]), fmt(val[c, s]), esc(unit == "-" ? "" : " " unit))
        body = body sprintf("<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"%s\" fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">%s</text>\n", lxp, ly, anchor, palette[i], fmt(val[c, s]))
      }
    }
    body = body sprintf("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n", x0, top, x0, top + ph)
    body = body sprintf("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333333\"/>\n", x0, top + ph, x1, top + ph)
    body = body sprintf("<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n", (x0 + x1) / 2, top + ph + 32, esc(xlabel (xlog == 1 ? ", logarithmic" : "")))
    body = body sprintf("<text transform=\"translate(%d %.1f) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n", pad + 10, top + ph / 2, esc((ylabel == "" ? "value" : ylabel) unit_txt))
    y = top + ph + 52
  }

  # Caption: where the numbers come from, the run's date and the load line(s).
  cap[1] = (("script" in meta) ? meta["script"] : src) (("date" in meta) ? ", run " meta["date"] : "") (("commit" in meta) ? ", commit " meta["commit"] : "")
  ncap = 1
  if ("load" in meta) cap[++ncap] = "Load: " meta["load"]
  for (i = 1; i <= nmeta_note; i++) cap[++ncap] = note[i]
  for (i = 1; i <= ncap; i++) {
    n = wrap(cap[i], W - 2 * pad, 10)
    for (k = 1; k <= n; k++) {
      body = body sprintf("<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"#555555\">%s</text>\n", pad, y, esc(wrapped[k]))
      y += 13
    }
  }
  H = y + 6
  printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" role=\"img\">\n", W, H, W, H
  printf "<title>%s</title>\n", esc(title)
  printf "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H
  printf "%s", body
  printf "</svg>\n"
}
