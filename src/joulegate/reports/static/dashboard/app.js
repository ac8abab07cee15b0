/* joulegate dashboard: polls /dashboard/api/* and draws with the vendored Chart.js.
   Plain JS, no build step. When the first data has been drawn, <html data-loaded="true">
   (and data-requests="N") is set, so tests and people can tell "empty" from "not yet". */
"use strict";

const API = "/dashboard/api";
const POLL_MS = 5000;
const PALETTE = ["#35d49a", "#6aa8ff", "#f5b841", "#b28dff", "#ff8fa3", "#4dd0e1", "#c5e478"];
const BASELINE_COLOR = "#8b97ad";

const state = {
  metric: "energy_j",
  windowS: 0,         // 0: auto, fit the window to the ledger's requests
  bucketS: 0,
  tiers: [],          // tier names in first-seen order: colours stay stable across polls
  charts: {},
  summary: null,
  series: null,
};

/* ---------- formatting: every unit a person reads ---------- */

function si(x, unit, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  const a = Math.abs(x);
  const steps = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""], [1e-3, "m"], [1e-6, "µ"]];
  for (const [scale, prefix] of steps) {
    if (a >= scale) return `${+(x / scale).toPrecision(digits)} ${prefix}${unit}`;
  }
  return a === 0 ? `0 ${unit}` : `${x.toExponential(1)} ${unit}`;
}
const fmtJ = (j) => si(j, "J");
const fmtWh = (j) => si(j / 3600, "Wh");
const fmtG = (g) => (Math.abs(g) >= 1e6 ? si(g / 1e6, "t") : Math.abs(g) >= 1000 ? si(g / 1000, "kg") : si(g, "g"));
function fmtUSD(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  const a = Math.abs(x), s = x < 0 ? "−" : "";
  if (a >= 1e9) return `${s}$${+(a / 1e9).toPrecision(3)} bn`;
  if (a >= 1e6) return `${s}$${+(a / 1e6).toPrecision(3)} M`;
  if (a >= 1e3) return `${s}$${+(a / 1e3).toPrecision(3)} k`;
  if (a >= 1) return `${s}$${a.toFixed(2)}`;
  if (a === 0) return "$0";
  return `${s}$${a.toPrecision(2)}`;
}
function fmtCount(x) {
  const a = Math.abs(x);
  if (a >= 1e9) return `${+(x / 1e9).toPrecision(3)} bn`;
  if (a >= 1e6) return `${+(x / 1e6).toPrecision(3)} M`;
  if (a >= 1e4) return `${+(x / 1e3).toPrecision(3)} k`;
  return Math.round(x).toLocaleString("en-US");
}
/* 3 significant digits with thousands separators: 16,200 rather than 16.2 k (for tonnes, homes). */
function grouped(x) {
  if (Math.abs(x) >= 1e7) return fmtCount(x);
  return Number(x.toPrecision(3)).toLocaleString("en-US", { maximumFractionDigits: 2 });
}
const pct = (part, whole) => (whole ? `${((100 * part) / whole).toFixed(whole && Math.abs(part / whole) < 0.1 ? 1 : 0)}%` : "–");
const METRICS = {
  energy_j: { label: "energy", fmt: fmtJ, baseline: "baseline_energy_j" },
  requests: { label: "requests", fmt: fmtCount, baseline: null },
  cost_usd: { label: "cost", fmt: fmtUSD, baseline: "baseline_cost_usd" },
  co2e_g: { label: "CO2e", fmt: fmtG, baseline: "baseline_co2e_g" },
};

/* How an energy figure was obtained, from the receipt's energy_source ("measured:nvml"...). */
function sourceKind(src) {
  const kind = String(src || "").split(":")[0];
  return ["measured", "modeled", "estimated", "cache"].includes(kind) ? kind : "estimated";
}
const SOURCE_HELP = {
  measured: "read from a hardware energy counter over the request",
  modeled: "CPU power model over the request's CPU time",
  estimated: "per-token profile of a hosted model (full-stack)",
  cache: "answered from the cache",
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
const $ = (id) => document.getElementById(id);

function tierColor(name) {
  if (!state.tiers.includes(name)) state.tiers.push(name);
  return PALETTE[state.tiers.indexOf(name) % PALETTE.length];
}

async function getJSON(path) {
  const res = await fetch(API + path, { cache: "no-store" });
  if (res.status === 401) {
    // The session expired or was revoked: the page itself now answers with the sign-in form.
    window.location.reload();
  }
  if (!res.ok) {
    let detail = res.statusText;
    try {
      const body = await res.json();
      detail = (body.error && body.error.message) || body.detail || detail;
    } catch (_) { /* not JSON */ }
    throw new Error(`${res.status} ${detail}`);
  }
  return res.json();
}

/* ---------- charts ---------- */

function baseOptions(extra = {}) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: {
      legend: { labels: { color: "#c9d2e3", boxWidth: 12, boxHeight: 12, font: { size: 12 } } },
      tooltip: { backgroundColor: "#0b111b", borderColor: "#27324a", borderWidth: 1 },
    },
    ...extra,
  };
}
const gridColor = "rgba(139,151,173,0.14)";
const tickColor = "#8b97ad";

function makeCharts() {
  Chart.defaults.color = tickColor;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  state.charts.time = new Chart($("chart-time"), {
    type: "bar",
    data: { labels: [], datasets: [] },
    options: baseOptions({
      scales: {
        x: { stacked: true, grid: { display: false }, ticks: { color: tickColor, maxRotation: 0, autoSkipPadding: 16 } },
        y: { stacked: true, beginAtZero: true, grid: { color: gridColor }, ticks: { color: tickColor, callback: (v) => METRICS[state.metric].fmt(v) } },
      },
      plugins: {
        ...baseOptions().plugins,
        tooltip: { ...baseOptions().plugins.tooltip, callbacks: { label: (c) => ` ${c.dataset.label}: ${METRICS[state.metric].fmt(c.parsed.y)}` } },
      },
    }),
  });
  state.charts.share = new Chart($("chart-share"), {
    type: "doughnut",
    data: { labels: [], datasets: [{ data: [], backgroundColor: [], borderColor: "#161e2d", borderWidth: 3 }] },
    options: baseOptions({
      cutout: "62%",
      interaction: { mode: "nearest", intersect: true },
      plugins: {
        legend: { position: "bottom", labels: { color: "#c9d2e3", boxWidth: 12, boxHeight: 12 } },
        tooltip: { callbacks: { label: (c) => ` ${c.label}: ${c.parsed} requests` } },
      },
    }),
  });
  state.charts.cum = new Chart($("chart-cum"), {
    type: "line",
    data: { labels: [], datasets: [] },
    options: baseOptions({
      elements: { point: { radius: 0 }, line: { tension: 0.25, borderWidth: 2 } },
      scales: {
        x: { grid: { display: false }, ticks: { color: tickColor, maxRotation: 0, autoSkipPadding: 24 } },
        y: { beginAtZero: true, grid: { color: gridColor }, ticks: { color: tickColor, callback: (v) => fmtJ(v) } },
      },
      plugins: {
        ...baseOptions().plugins,
        tooltip: { ...baseOptions().plugins.tooltip, callbacks: { label: (c) => ` ${c.dataset.label}: ${fmtJ(c.parsed.y)}` } },
      },
    }),
  });
}

function bucketLabel(t, bucketS) {
  const d = new Date(t * 1000);
  const iso = d.toISOString();
  if (bucketS >= 86400) return iso.slice(5, 10);
  if (bucketS >= 3600) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return bucketS >= 60 ? iso.slice(11, 16) : iso.slice(11, 19);
}

/* Dense buckets over the whole window (the API only returns buckets that have requests). */
function buckets(series) {
  const b = series.bucket_s;
  const now = Date.now() / 1000;
  const last = Math.floor(now / b) * b;
  let first = Math.floor((now - series.window_s) / b) * b;
  for (const r of series.rows) first = Math.min(first, r.bucket);
  const out = [];
  for (let t = first; t <= last; t += b) out.push(t);
  return out;
}

function drawTime() {
  const series = state.series;
  if (!series) return;
  const m = METRICS[state.metric];
  const times = buckets(series);
  const index = new Map(times.map((t, i) => [t, i]));
  const byTier = new Map();
  const baseline = new Array(times.length).fill(0);
  for (const r of series.rows) {
    const i = index.get(r.bucket);
    if (i === undefined) continue;
    if (!byTier.has(r.tier)) byTier.set(r.tier, new Array(times.length).fill(0));
    byTier.get(r.tier)[i] += Number(r[state.metric] || 0);
    if (m.baseline) baseline[i] += Number(r[m.baseline] || 0);
  }
  const ordered = [...byTier.entries()].sort((x, y) => state.tiers.indexOf(x[0]) - state.tiers.indexOf(y[0]));
  const datasets = ordered.map(([tier, data]) => ({
    type: "bar", label: tier, data, backgroundColor: tierColor(tier), borderRadius: 3, stack: "tiers", order: 2,
  }));
  if (m.baseline) {
    datasets.push({
      type: "line", label: "all-largest-tier baseline", data: baseline, borderColor: BASELINE_COLOR,
      borderDash: [5, 4], borderWidth: 1.5, pointRadius: 0, stepped: "middle", fill: false, order: 1,
    });
  }
  const chart = state.charts.time;
  chart.data.labels = times.map((t) => bucketLabel(t, series.bucket_s));
  chart.data.datasets = datasets;
  chart.update("none");

  // Cumulative energy in the window: routed vs baseline.
  const routed = [], base = [];
  let a = 0, bsum = 0;
  const energyByBucket = new Array(times.length).fill(0);
  const baseByBucket = new Array(times.length).fill(0);
  for (const r of series.rows) {
    const i = index.get(r.bucket);
    if (i === undefined) continue;
    energyByBucket[i] += Number(r.energy_j || 0);
    baseByBucket[i] += Number(r.baseline_energy_j || 0);
  }
  for (let i = 0; i < times.length; i++) {
    a += energyByBucket[i]; bsum += baseByBucket[i];
    routed.push(a); base.push(bsum);
  }
  const cum = state.charts.cum;
  cum.data.labels = chart.data.labels;
  cum.data.datasets = [
    { label: "baseline (all largest tier)", data: base, borderColor: BASELINE_COLOR, borderDash: [5, 4],
      backgroundColor: "rgba(139,151,173,0.10)", fill: "+1" },
    { label: "routed (actual)", data: routed, borderColor: "#35d49a", backgroundColor: "rgba(53,212,154,0.18)", fill: "origin" },
  ];
  cum.update("none");
}

function drawShare(byTier) {
  const chart = state.charts.share;
  const rows = byTier.filter((g) => g.requests > 0);
  const total = rows.reduce((s, g) => s + g.requests, 0);
  chart.data.labels = rows.map((g) => `${g.group} ${pct(g.requests, total)}`);
  chart.data.datasets[0].data = rows.map((g) => g.requests);
  chart.data.datasets[0].backgroundColor = rows.map((g) => tierColor(g.group));
  chart.update("none");
  const parts = rows.map((g) => `${g.group}: ${fmtJ(g.energy_j_per_request)}/request`);
  $("share-foot").textContent = parts.length ? `Energy per request — ${parts.join(" · ")}` : "\u00a0";
}

/* ---------- KPIs ---------- */

function sourceSplit(t) {
  const by = t.energy_by_source || {};
  const reqs = t.requests_by_source || {};
  const kinds = {};
  for (const [src, n] of Object.entries(reqs)) {
    const k = sourceKind(src);
    kinds[k] = (kinds[k] || 0) + n;
  }
  return Object.entries(kinds)
    .sort((x, y) => y[1] - x[1])
    .map(([k, n]) => `${pct(n, t.requests)} ${k}`)
    .join(" · ") || (Object.keys(by).length ? "" : "no energy recorded");
}

function drawKPIs(s) {
  const t = s.totals;
  $("kpi-requests").textContent = fmtCount(t.requests);
  $("kpi-requests-note").textContent = t.first_ts ? `since ${t.first_ts.slice(0, 16).replace("T", " ")} UTC` : "none yet";
  $("kpi-energy").textContent = fmtJ(t.energy_j);
  $("kpi-energy-note").textContent = `${fmtWh(t.energy_j)} · ${sourceSplit(t)}`;
  $("kpi-cost").textContent = fmtUSD(t.cost_usd);
  $("kpi-cost-note").textContent = `baseline ${fmtUSD(t.baseline_cost_usd)} · ${lessOrMore(t.savings_cost_usd, t.baseline_cost_usd)}`;
  $("kpi-co2e").textContent = fmtG(t.co2e_g);
  $("kpi-co2e-note").textContent = `baseline ${fmtG(t.baseline_co2e_g)} · ${lessOrMore(t.savings_co2e_g, t.baseline_co2e_g)}`;
  drawSaved(t, s.learning);
  drawQuality(s.quality);
  drawCache(s.cache);
}

/* "12% less" / "3.6% more": a negative saving is a cost, and says so. */
function lessOrMore(saved, baseline) {
  return saved < 0 ? `${pct(-saved, baseline)} more` : `${pct(saved, baseline)} less`;
}

/* Savings against all-largest-tier (net of learning overhead, whose baseline is zero). A
   negative saving is shown as a cost, in red: never styled as a win. */
function drawSaved(t, learning) {
  const neg = t.savings_energy_j < 0;
  $("kpi-saved-card").className = `kpi ${neg ? "cost" : "save"}`;
  $("kpi-saved-title").textContent = neg ? "Costs more than all-largest-tier" : "Saved vs all-largest-tier";
  $("kpi-saved").textContent = t.baseline_energy_j
    ? `${pct(Math.abs(t.savings_energy_j), t.baseline_energy_j)} ${neg ? "more energy" : "energy"}`
    : "–";
  const verb = neg ? "extra" : "saved";
  const abs = (x) => Math.abs(x || 0);
  let note = `${fmtJ(abs(t.savings_energy_j))} · ${fmtUSD(abs(t.savings_cost_usd))} · ${fmtG(abs(t.savings_co2e_g))} CO2e ${verb}`;
  const over = learning ? Object.values(learning).reduce((a, v) => a + (v.energy_j || 0), 0) : 0;
  if (over > 0) note += ` · net of ${fmtJ(over)} learning overhead`;
  $("kpi-saved-note").textContent = note;
}

/* Quality retained over the shadowed sample, with its 95% interval and n; a sample too small
   to say anything says so instead of showing a number. */
function drawQuality(q) {
  const big = $("kpi-quality"), note = $("kpi-quality-note");
  big.className = "big";
  const all = q && q.overall;
  if (!all || !all.n) {
    big.textContent = "–";
    note.textContent = "not measured yet ([routing.learn])";
    return;
  }
  if (all.too_small) {
    big.className = "big small";
    big.textContent = "sample too small";
    note.textContent = `n = ${all.n} judged answers (${all.min_sample} needed)`;
    return;
  }
  big.replaceChildren(
    document.createTextNode(`${(100 * all.rate).toFixed(1)}% `),
    el("span", { class: "ci" }, `${(100 * all.low).toFixed(0)}–${(100 * all.high).toFixed(0)}%`),
  );
  const tiers = (q.by_tier || []).map((g) => `${g.group} ${g.too_small ? "n too small" : `${(100 * g.rate).toFixed(0)}%`} (n ${g.n})`);
  note.textContent = `95% CI · n = ${all.n} judged` + (tiers.length > 1 ? ` · ${tiers.join(" · ")}` : "");
}

function drawCache(c) {
  if (!c) return;
  $("kpi-cache").textContent = c.requests ? `${(100 * c.hit_rate).toFixed(1)}% hits` : "–";
  const fh = c.est_false_hit_rate == null ? "" : ` · est. false hits ${(100 * c.est_false_hit_rate).toFixed(2)}%`;
  $("kpi-cache-note").textContent = `${fmtCount(c.hits)} served · ${fmtJ(c.energy_saved_j)} saved${fh}`;
}

/* ---------- recent receipts ---------- */

function savedCell(r, saved) {
  const title = `baseline ${fmtJ(r.baseline_energy_j)}`;
  if (!r.baseline_energy_j) return el("td", { class: "n muted", title }, "–");
  if (saved === 0 && r.energy_source !== "cache") return el("td", { class: "n muted", title }, "ran on the baseline tier");
  return el("td", { class: `n ${saved >= 0 ? "saved" : "worse"}`, title }, `${fmtJ(saved)} (${pct(saved, r.baseline_energy_j)})`);
}

function drawRecent(rows) {
  const body = $("recent").querySelector("tbody");
  body.replaceChildren(...rows.map((r) => {
    const kind = sourceKind(r.energy_source);
    const saved = Number(r.baseline_energy_j || 0) - Number(r.energy_j || 0);
    const ok = r.status === "ok";
    return el("tr", {},
      el("td", {}, String(r.ts).slice(11, 19)),
      el("td", {}, el("span", { class: "tier" }, el("i", { style: `background:${tierColor(r.tier)}` }), r.tier),
        " ", el("span", { class: "model" }, r.model)),
      el("td", { class: ok ? "ok" : "bad", title: r.error || "" }, `${r.status} ${r.http_status ?? ""}`),
      el("td", { class: "n" }, `${r.prompt_tokens}→${r.completion_tokens}`),
      el("td", { class: "n" }, `${Math.round(r.latency_ms)} ms`),
      el("td", { class: "n", title: fmtWh(r.energy_j) }, fmtJ(r.energy_j)),
      el("td", {}, el("span", { class: `src ${kind}`, title: `${r.energy_source}: ${SOURCE_HELP[kind]}` }, r.energy_source)),
      el("td", { class: "n" }, fmtUSD(r.cost_usd)),
      el("td", { class: "n" }, fmtG(r.co2e_g)),
      savedCell(r, saved),
    );
  }));
  $("recent-count").textContent = rows.length ? `newest ${rows.length}` : "no requests yet";
}

/* ---------- projection ---------- */

function drawProjection(p) {
  const box = $("proj-body");
  if (!p.available) {
    box.replaceChildren(el("p", { class: "muted" }, `No projection yet: ${p.reason}.`));
    return;
  }
  const b = p.baseline, r = p.routed, s = p.savings;
  const rows = [
    ["Electricity", (x) => `${+x.gwh_per_year.toPrecision(3)} GWh`, "gwh_per_year"],
    ["Continuous load", (x) => `${+x.average_mw.toPrecision(3)} MW`, "average_mw"],
    ["US homes' electricity", (x) => grouped(x.homes), "homes"],
    ["Emissions", (x) => `${grouped(x.tonnes_co2e)} t CO2e`, "tonnes_co2e"],
    ["Electricity bill", (x) => fmtUSD(x.electricity_usd), "electricity_usd"],
  ];
  if (b.spend_usd !== null && r.spend_usd !== null) rows.push(["Model spend (list prices)", (x) => fmtUSD(x.spend_usd), "spend_usd"]);
  const max = (k) => Math.max(Math.abs(b[k] || 0), Math.abs(r[k] || 0)) || 1;
  const bar = (v, k, color) => el("span", { class: "bar", style: `width:${Math.max(2, (60 * Math.abs(v)) / max(k))}px;background:${color}` });
  const table = el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "per year"), el("th", {}, "baseline (all largest tier)"), el("th", {}, "routed"), el("th", {}, "saved"))),
    el("tbody", {}, ...rows.map(([name, f, k]) => el("tr", {},
      el("td", {}, name),
      el("td", {}, f(b), bar(b[k], k, BASELINE_COLOR)),
      el("td", {}, f(r), bar(r[k], k, "#35d49a")),
      el("td", { class: `diff${s[k] < 0 ? " neg" : ""}` }, f(s)),
    ))),
  );
  const i = p.inputs;
  const neg = s.gwh_per_year < 0;
  const headline = Math.abs(p.energy_saved_fraction) < 1e-9
    ? el("p", { class: "headline" }, "Every request so far ran on the largest tier, so routing has nothing to save yet at ",
      el("b", {}, `${fmtCount(i.queries_per_day)} queries a day`), ".")
    : el("p", { class: `headline${neg ? " neg" : ""}` },
    `${fmtCount(i.queries_per_day)} queries a day at this ledger's mix ${neg ? "costs" : "saves"} `,
    el("b", {}, `${+Math.abs(s.gwh_per_year).toPrecision(3)} GWh`), neg ? " more a year — the electricity of " : " a year — the electricity of ",
    el("b", {}, `${grouped(Math.abs(s.homes))} US homes`), ".");
  box.replaceChildren(headline, table);
  const basis = i.energy_basis === "facility" ? `energy as metered (this machine's tiers × PUE ${i.pue}, hosted tiers full-stack)` : `device energy × PUE ${i.pue}`;
  $("proj-foot").textContent =
    `From ${i.source}: ${fmtJ(i.energy_per_query_j)} routed vs ${fmtJ(i.baseline_energy_per_query_j)} baseline per query, ${basis}; ` +
    `grid ${i.grid_g_per_kwh} g/kWh; $${i.usd_per_kwh}/kWh; ${i.kwh_per_home_year.toLocaleString("en-US")} kWh per home; ` +
    `rebound elasticity ${i.rebound_elasticity}${i.rebound_elasticity ? ` (${pct(p.rebound_fraction, 1)} of the saving taken back)` : ""}.`;
}

/* ---------- polling ---------- */

const NICE_BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

/* "auto": from just before the first request (2 min at least, 30 days at most) to now, so a
   fresh gateway shows its first requests as bars rather than a sliver at the right edge. */
function timeWindow(totals) {
  if (state.windowS) return [state.windowS, state.bucketS];
  const first = totals.first_ts ? Date.parse(totals.first_ts) / 1000 : Date.now() / 1000;
  const span = Date.now() / 1000 - first;
  const windowS = Math.ceil(Math.min(30 * 86400, Math.max(120, span * 1.08 + 10)));
  const bucketS = NICE_BUCKETS.find((b) => windowS / b <= 60) || 86400;
  return [windowS, bucketS];
}

async function refresh() {
  const live = $("live");
  try {
    const qpd = $("qpd").value, reb = $("rebound").value;
    const summary = await getJSON("/summary");
    const [windowS, bucketS] = timeWindow(summary.totals);
    const [series, recent, proj] = await Promise.all([
      getJSON(`/timeseries?window_s=${windowS}&bucket_s=${bucketS}`),
      getJSON("/recent?limit=15"),
      getJSON(`/projection?queries_per_day=${qpd}&rebound_elasticity=${reb}`),
    ]);
    state.summary = summary;
    state.series = series;
    $("signout").hidden = !(summary.viewer && summary.viewer.session);
    // Tier colours follow the ledger's order (cheapest first where names sort that way).
    for (const g of summary.by_tier) tierColor(g.group);
    drawKPIs(summary);
    drawShare(summary.by_tier);
    drawTime();
    drawRecent(recent.rows);
    drawProjection(proj);
    $("banner").hidden = true;
    live.className = "live ok";
    live.textContent = `live · ${new Date().toISOString().slice(11, 19)} UTC`;
    document.documentElement.dataset.requests = String(summary.totals.requests);
    document.documentElement.dataset.loaded = "true";
  } catch (err) {
    live.className = "live err";
    live.textContent = "disconnected";
    const banner = $("banner");
    banner.hidden = false;
    banner.textContent = `Cannot read the ledger: ${err.message}. Retrying every ${POLL_MS / 1000} s.`;
  }
}

function start() {
  makeCharts();
  $("metric").addEventListener("click", (e) => {
    const btn = e.target.closest("button[data-metric]");
    if (!btn) return;
    state.metric = btn.dataset.metric;
    for (const b of $("metric").querySelectorAll("button")) b.classList.toggle("on", b === btn);
    drawTime();
  });
  $("window").addEventListener("change", (e) => {
    [state.windowS, state.bucketS] = e.target.value.split(":").map(Number);
    refresh();
  });
  for (const id of ["qpd", "rebound"]) $(id).addEventListener("change", refresh);
  refresh();
  setInterval(refresh, POLL_MS);
}

document.addEventListener("DOMContentLoaded", start);
