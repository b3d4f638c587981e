//! Small SVG charts for monitoring, drawn by the page itself (no chart
//! library): a sparkline of recent results, a latency chart over a time
//! range, and a timeline of up/down states.
//!
//! The geometry is computed by plain functions from the data, so the server
//! and the browser draw the same thing (hydration compares them) and the
//! math is unit-tested.

use leptos::prelude::*;
use protocol::views::monitoring::{MonitorSeries, MonitorState, RecentResult, StateSpan};
use time::OffsetDateTime;

const GREEN: &str = "#10b981";
const RED: &str = "#e11d48";
const GREY: &str = "#cbd5e1";
const SKY: &str = "#0284c7";

/// A coordinate with one decimal: short paths, stable text.
fn c(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    // `-0` would differ from `0` in text.
    if r == 0.0 { "0".into() } else { format!("{r}") }
}

// ---------------------------------------------------------------------------
// Sparkline
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct SparkGeometry {
    /// `points` of a polyline through the latencies of successful results.
    pub line: String,
    /// x of every failed result.
    pub failures: Vec<f64>,
}

/// Results spread evenly over `width` (oldest left); latency scaled to the
/// largest one, 1 px from the edges.
pub fn spark_geometry(results: &[RecentResult], width: f64, height: f64) -> SparkGeometry {
    let n = results.len();
    let x = |i: usize| {
        if n <= 1 {
            width / 2.0
        } else {
            i as f64 * width / (n - 1) as f64
        }
    };
    let max = results
        .iter()
        .filter_map(|r| r.latency_ms.filter(|_| r.ok))
        .fold(0.0_f64, f64::max);
    let y = |latency: f64| {
        let inner = height - 2.0;
        if max <= 0.0 {
            height - 1.0
        } else {
            1.0 + inner - latency / max * inner
        }
    };
    let line = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.ok)
        .filter_map(|(i, r)| r.latency_ms.map(|l| format!("{},{}", c(x(i)), c(y(l)))))
        .collect::<Vec<_>>()
        .join(" ");
    let failures = results
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.ok)
        .map(|(i, _)| x(i))
        .collect();
    SparkGeometry { line, failures }
}

/// Recent results at a glance: latency as a line, failures as red ticks.
#[component]
pub fn Sparkline(
    results: Vec<RecentResult>,
    #[prop(default = 120.0)] width: f64,
    #[prop(default = 24.0)] height: f64,
) -> impl IntoView {
    let g = spark_geometry(&results, width, height);
    let failed = g.failures.len();
    let label = format!("{} recent results, {failed} failed", results.len());
    let title = label.clone();
    view! {
        <svg width=c(width) height=c(height) viewBox=format!("0 0 {} {}", c(width), c(height))
            role="img" aria-label=label data-testid="sparkline" class="overflow-visible">
            <title>{title}</title>
            <polyline points=g.line fill="none" stroke=SKY stroke-width="1.5" stroke-linejoin="round" />
            {g.failures.into_iter().map(|x| view! {
                <line x1=c(x) x2=c(x) y1="0" y2=c(height) stroke=RED stroke-width="2" />
            }).collect_view()}
        </svg>
    }
}

// ---------------------------------------------------------------------------
// Latency chart
// ---------------------------------------------------------------------------

/// Margins of the latency chart's plot area.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub at: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatencyGeometry {
    /// Path of the average latency; gaps where a bucket has no latency.
    pub avg: String,
    /// Buckets with latency but no neighbour with latency: a path would
    /// draw nothing there, so they are dots.
    pub dots: Vec<(f64, f64)>,
    /// Closed paths between the average and the maximum, one per run of
    /// buckets with data.
    pub band: Vec<String>,
    /// Buckets with failures: red bars from the bottom, as high as the
    /// share of checks that failed.
    pub failures: Vec<Bar>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    /// Every bucket's column with its tooltip.
    pub columns: Vec<(Bar, String)>,
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `v` (at least 1).
pub fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|n| *n >= v)
        .unwrap_or(10.0 * magnitude)
}

fn ms_label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{} s", c(v / 1000.0))
    } else {
        format!("{} ms", c(v))
    }
}

/// "14:05" within a day, "Nov 23" beyond (UTC, so server and browser agree).
fn time_label(t: OffsetDateTime, long_range: bool) -> String {
    if long_range {
        format!("{} {}", &format!("{:?}", t.month())[..3], t.day())
    } else {
        format!("{:02}:{:02}", t.hour(), t.minute())
    }
}

fn tooltip(p: &protocol::views::monitoring::SeriesPoint, long_range: bool) -> String {
    let when = if long_range {
        format!(
            "{} {:02}:{:02}",
            time_label(p.at, true),
            p.at.hour(),
            p.at.minute()
        )
    } else {
        time_label(p.at, false)
    };
    let latency = match (p.latency_avg_ms, p.latency_max_ms) {
        (Some(a), Some(m)) => format!(", avg {}, max {}", ms_label(a), ms_label(m)),
        (Some(a), None) => format!(", avg {}", ms_label(a)),
        _ => String::new(),
    };
    if p.checks == 0 {
        format!("{when}: no checks")
    } else {
        format!(
            "{when} UTC: {} checks, {} failed{latency}",
            p.checks, p.failures
        )
    }
}

pub fn latency_geometry(series: &MonitorSeries, width: f64, height: f64) -> LatencyGeometry {
    let plot_w = (width - LEFT - RIGHT).max(1.0);
    let plot_h = (height - TOP - BOTTOM).max(1.0);
    let n = series.points.len().max(1);
    let bucket_w = plot_w / n as f64;
    let top = series
        .points
        .iter()
        .filter_map(|p| p.latency_max_ms.or(p.latency_avg_ms))
        .fold(0.0_f64, f64::max);
    let y_max = nice_ceiling(top);
    let y = |v: f64| TOP + plot_h - (v / y_max).clamp(0.0, 1.0) * plot_h;
    let x_mid = |i: usize| LEFT + (i as f64 + 0.5) * bucket_w;

    let mut avg = String::new();
    let mut band = Vec::new();
    let mut run: Vec<(usize, f64, f64)> = Vec::new();
    let mut dots = Vec::new();
    let mut flush = |run: &mut Vec<(usize, f64, f64)>, band: &mut Vec<String>| {
        if let [(i, a, _)] = run.as_slice() {
            dots.push((x_mid(*i), y(*a)));
        }
        if run.is_empty() {
            return;
        }
        let mut d = String::new();
        for (k, (i, _, max)) in run.iter().enumerate() {
            d.push_str(&format!(
                "{}{},{}",
                if k == 0 { "M" } else { " L" },
                c(x_mid(*i)),
                c(y(*max))
            ));
        }
        for (i, a, _) in run.iter().rev() {
            d.push_str(&format!(" L{},{}", c(x_mid(*i)), c(y(*a))));
        }
        d.push_str(" Z");
        band.push(d);
        run.clear();
    };
    let mut previous = false;
    for (i, p) in series.points.iter().enumerate() {
        match p.latency_avg_ms {
            Some(a) => {
                let cmd = if previous {
                    " L"
                } else if avg.is_empty() {
                    "M"
                } else {
                    " M"
                };
                avg.push_str(&format!("{cmd}{},{}", c(x_mid(i)), c(y(a))));
                run.push((i, a, p.latency_max_ms.unwrap_or(a).max(a)));
                previous = true;
            }
            None => {
                flush(&mut run, &mut band);
                previous = false;
            }
        }
    }
    flush(&mut run, &mut band);

    let failures = series
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.failures > 0 && p.checks > 0)
        .map(|(i, p)| {
            let share = f64::from(p.failures.min(p.checks)) / f64::from(p.checks);
            let h = share * plot_h;
            Bar {
                x: LEFT + i as f64 * bucket_w,
                y: TOP + plot_h - h,
                width: bucket_w,
                height: h,
            }
        })
        .collect();

    let y_ticks = (0..=4)
        .map(|k| {
            let v = y_max * f64::from(k) / 4.0;
            Tick {
                at: y(v),
                label: ms_label(v),
            }
        })
        .collect();

    let long_range = (series.to - series.from).whole_hours() > 24;
    let span = (series.to - series.from).as_seconds_f64().max(1.0);
    let x_ticks = (0..=4)
        .map(|k| {
            let share = f64::from(k) / 4.0;
            let t = series.from + time::Duration::seconds_f64(span * share);
            Tick {
                at: LEFT + share * plot_w,
                label: time_label(t, long_range),
            }
        })
        .collect();

    let columns = series
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                Bar {
                    x: LEFT + i as f64 * bucket_w,
                    y: TOP,
                    width: bucket_w,
                    height: plot_h,
                },
                tooltip(p, long_range),
            )
        })
        .collect();

    LatencyGeometry {
        avg,
        dots,
        band,
        failures,
        y_ticks,
        x_ticks,
        columns,
    }
}

/// Average latency with the maximum as a band, failures as red bars, and a
/// tooltip per bucket.
#[component]
pub fn LatencyChart(
    series: MonitorSeries,
    #[prop(default = 800.0)] width: f64,
    #[prop(default = 220.0)] height: f64,
) -> impl IntoView {
    let g = latency_geometry(&series, width, height);
    let plot_bottom = height - BOTTOM;
    let failed: u32 = series.points.iter().map(|p| p.failures).sum();
    let checks: u32 = series.points.iter().map(|p| p.checks).sum();
    let label = format!(
        "Latency over the last {}: {checks} checks, {failed} failed",
        series.range.label()
    );
    view! {
        <svg viewBox=format!("0 0 {} {}", c(width), c(height)) class="h-auto w-full" role="img"
            aria-label=label data-testid="latency-chart">
            {g.y_ticks.into_iter().map(|t| view! {
                <line x1=c(LEFT) x2=c(width - RIGHT) y1=c(t.at) y2=c(t.at) stroke="#e2e8f0" stroke-width="1" />
                <text x=c(LEFT - 6.0) y=c(t.at + 4.0) text-anchor="end" font-size="11" fill="#64748b">{t.label}</text>
            }).collect_view()}
            {
                // The outer labels stay inside the picture.
                let last = g.x_ticks.len().saturating_sub(1);
                g.x_ticks.into_iter().enumerate().map(|(i, t)| {
                    let anchor = match i {
                        0 => "start",
                        i if i == last => "end",
                        _ => "middle",
                    };
                    view! {
                        <text x=c(t.at) y=c(height - 6.0) text-anchor=anchor font-size="11" fill="#64748b">{t.label}</text>
                    }
                }).collect_view()
            }
            {g.failures.into_iter().map(|b| view! {
                <rect x=c(b.x) y=c(b.y) width=c(b.width) height=c(b.height) fill=RED fill-opacity="0.45" data-testid="failure-bar" />
            }).collect_view()}
            {g.band.into_iter().map(|d| view! { <path d=d fill=SKY fill-opacity="0.15" stroke="none" /> }).collect_view()}
            <path d=g.avg fill="none" stroke=SKY stroke-width="2" stroke-linejoin="round" />
            {g.dots.into_iter().map(|(x, y)| view! { <circle cx=c(x) cy=c(y) r="2.5" fill=SKY /> }).collect_view()}
            <line x1=c(LEFT) x2=c(width - RIGHT) y1=c(plot_bottom) y2=c(plot_bottom) stroke="#94a3b8" stroke-width="1" />
            {g.columns.into_iter().map(|(b, title)| view! {
                <rect x=c(b.x) y=c(b.y) width=c(b.width) height=c(b.height) fill="transparent" class="hover:fill-slate-500/10">
                    <title>{title}</title>
                </rect>
            }).collect_view()}
        </svg>
    }
}

// ---------------------------------------------------------------------------
// State timeline
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct SpanBar {
    pub x: f64,
    pub width: f64,
    pub state: MonitorState,
    pub title: String,
}

pub fn state_color(state: MonitorState) -> &'static str {
    match state {
        MonitorState::Up => GREEN,
        MonitorState::Down => RED,
        MonitorState::Unknown => GREY,
    }
}

pub fn state_label(state: MonitorState) -> &'static str {
    match state {
        MonitorState::Up => "Up",
        MonitorState::Down => "Down",
        MonitorState::Unknown => "Unknown",
    }
}

/// Spans placed on `from..to` over `width`, clipped to the range.
pub fn timeline_geometry(
    spans: &[StateSpan],
    from: OffsetDateTime,
    to: OffsetDateTime,
    width: f64,
) -> Vec<SpanBar> {
    let total = (to - from).as_seconds_f64();
    if total <= 0.0 {
        return Vec::new();
    }
    let x = |t: OffsetDateTime| ((t - from).as_seconds_f64() / total).clamp(0.0, 1.0) * width;
    let long_range = (to - from).whole_hours() > 24;
    spans
        .iter()
        .filter_map(|s| {
            let (x1, x2) = (x(s.from), x(s.to));
            (x2 > x1).then(|| SpanBar {
                x: x1,
                width: x2 - x1,
                state: s.state,
                title: format!(
                    "{} from {} to {} UTC",
                    state_label(s.state),
                    span_time(s.from, long_range),
                    span_time(s.to, long_range)
                ),
            })
        })
        .collect()
}

fn span_time(t: OffsetDateTime, long_range: bool) -> String {
    if long_range {
        format!("{} {:02}:{:02}", time_label(t, true), t.hour(), t.minute())
    } else {
        time_label(t, false)
    }
}

/// Up (green), down (red) and unknown (grey) stretches over the range.
#[component]
pub fn StateTimeline(
    states: Vec<StateSpan>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    #[prop(default = 800.0)] width: f64,
    #[prop(default = 16.0)] height: f64,
) -> impl IntoView {
    let bars = timeline_geometry(&states, from, to, width);
    view! {
        <svg viewBox=format!("0 0 {} {}", c(width), c(height)) preserveAspectRatio="none" class="w-full"
            style=format!("height: {}px", c(height)) role="img" aria-label="State over time" data-testid="state-timeline">
            <rect x="0" y="0" width=c(width) height=c(height) fill=GREY fill-opacity="0.4" />
            {bars.into_iter().map(|b| view! {
                <rect x=c(b.x) y="0" width=c(b.width) height=c(height) fill=state_color(b.state)
                    data-state=state_label(b.state)>
                    <title>{b.title}</title>
                </rect>
            }).collect_view()}
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::views::monitoring::{SeriesPoint, TimeRange};
    use time::macros::datetime;

    fn recent(ok: bool, latency: Option<f64>) -> RecentResult {
        RecentResult {
            at: datetime!(2026-11-23 12:00 UTC),
            ok,
            latency_ms: latency,
        }
    }

    #[test]
    fn sparkline_scales_latency_and_marks_failures() {
        let g = spark_geometry(
            &[
                recent(true, Some(10.0)),
                recent(false, None),
                recent(true, Some(20.0)),
            ],
            100.0,
            22.0,
        );
        // Largest latency touches the top (1 px margin), x spread evenly.
        assert_eq!(g.line, "0,11 100,1");
        assert_eq!(g.failures, vec![50.0]);
        assert_eq!(spark_geometry(&[], 100.0, 22.0).line, "");
        let one = spark_geometry(&[recent(true, Some(0.0))], 100.0, 22.0);
        assert_eq!(one.line, "50,21");
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(200.0), 200.0);
        assert_eq!(nice_ceiling(450.0), 500.0);
    }

    fn point(
        min: i64,
        checks: u32,
        failures: u32,
        avg: Option<f64>,
        max: Option<f64>,
    ) -> SeriesPoint {
        SeriesPoint {
            at: datetime!(2026-11-23 12:00 UTC) + time::Duration::minutes(min),
            checks,
            failures,
            latency_avg_ms: avg,
            latency_max_ms: max,
        }
    }

    #[test]
    fn latency_chart_geometry() {
        let series = MonitorSeries {
            range: TimeRange::Hour,
            from: datetime!(2026-11-23 12:00 UTC),
            to: datetime!(2026-11-23 13:00 UTC),
            points: vec![
                point(0, 2, 0, Some(50.0), Some(100.0)),
                point(15, 2, 0, Some(100.0), Some(200.0)),
                point(30, 0, 0, None, None),
                point(45, 4, 1, Some(200.0), Some(200.0)),
            ],
            states: vec![],
        };
        // 64 + 4 × 100 wide plot area, 100 high (8 top + 22 bottom margins).
        let g = latency_geometry(&series, 464.0, 130.0);
        // y max 200 ms: 100 ms sits at half height.
        assert_eq!(g.avg, "M106,83 L206,58 M406,8");
        assert_eq!(g.band.len(), 2);
        // The last bucket stands alone: a dot, since a path draws nothing.
        assert_eq!(g.dots, vec![(406.0, 8.0)]);
        assert_eq!(g.band[0], "M106,58 L206,8 L206,58 L106,83 Z");
        assert_eq!(
            g.failures,
            vec![Bar {
                x: 356.0,
                y: 83.0,
                width: 100.0,
                height: 25.0
            }]
        );
        assert_eq!(g.y_ticks.first().unwrap().label, "0 ms");
        assert_eq!(g.y_ticks.last().unwrap().label, "200 ms");
        assert_eq!(g.y_ticks.last().unwrap().at, 8.0);
        let labels: Vec<_> = g.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["12:00", "12:15", "12:30", "12:45", "13:00"]);
        assert_eq!(g.columns.len(), 4);
        assert!(
            g.columns[3].1.contains("4 checks, 1 failed"),
            "{}",
            g.columns[3].1
        );
        assert_eq!(g.columns[2].1, "12:30: no checks");
    }

    #[test]
    fn long_ranges_label_days() {
        let series = MonitorSeries {
            range: TimeRange::Week,
            from: datetime!(2026-11-16 00:00 UTC),
            to: datetime!(2026-11-23 00:00 UTC),
            points: vec![],
            states: vec![],
        };
        let g = latency_geometry(&series, 800.0, 220.0);
        assert_eq!(g.x_ticks[0].label, "Nov 16");
        assert_eq!(g.avg, "");
    }

    #[test]
    fn timeline_places_and_clips_spans() {
        let from = datetime!(2026-11-23 12:00 UTC);
        let to = datetime!(2026-11-23 13:00 UTC);
        let spans = [
            StateSpan {
                from: datetime!(2026-11-23 11:00 UTC),
                to: datetime!(2026-11-23 12:30 UTC),
                state: MonitorState::Up,
            },
            StateSpan {
                from: datetime!(2026-11-23 12:30 UTC),
                to: datetime!(2026-11-23 12:45 UTC),
                state: MonitorState::Down,
            },
            StateSpan {
                from: datetime!(2026-11-23 14:00 UTC),
                to: datetime!(2026-11-23 15:00 UTC),
                state: MonitorState::Up,
            },
        ];
        let bars = timeline_geometry(&spans, from, to, 400.0);
        assert_eq!(bars.len(), 2);
        assert_eq!((bars[0].x, bars[0].width), (0.0, 200.0));
        assert_eq!((bars[1].x, bars[1].width), (200.0, 100.0));
        assert_eq!(bars[1].title, "Down from 12:30 to 12:45 UTC");
        assert!(timeline_geometry(&spans, to, from, 400.0).is_empty());
    }
}
