//! Server-rendered SVG charts for the desk's dashboard: stacked bars or lines over days, with
//! axes, tick labels, a legend, and `<title>`/`<desc>` so a screen reader announces what the
//! chart shows (the page also carries each chart's numbers as a table).
//!
//! Only SVG presentation attributes are used (no `style`), so the desk's CSP, which allows no
//! inline style, renders them as they are. Every text goes through [`escape`]. Values are
//! integers (counts, or money in minor units); positions are computed in integer pixels.

use std::fmt::Write;

// The emails' escaping: the five XML/HTML specials, for SVG text and attribute values alike.
pub use billpay_services::email::render::escape;

/// Colors of the series in order (distinguishable in the common color-vision deficiencies:
/// the Okabe-Ito palette), repeated past the eighth.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

const WIDTH: i64 = 720;
const HEIGHT: i64 = 280;
const LEFT: i64 = 84;
const RIGHT: i64 = 16;
const TOP: i64 = 16;
const BOTTOM: i64 = 56;
/// Most x-axis labels drawn; with more days every n-th is labelled.
const X_LABELS_MAX: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One bar per day, the series stacked.
    StackedBars,
    /// One line per series.
    Lines,
}

/// One named line of values, one per x label.
pub struct Line<'a> {
    pub name: &'a str,
    pub values: &'a [i64],
}

pub struct Chart<'a> {
    /// Unique on the page: the ids of the title and description derive from it.
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
    pub x_labels: &'a [String],
    pub series: &'a [Line<'a>],
    pub kind: Kind,
    /// How a value is written on the y axis (a count, or money).
    pub format: &'a dyn Fn(i64) -> String,
}

/// A round step (1, 2 or 5 times a power of ten) so that about four steps reach `max`.
pub fn tick_step(max: i64) -> i64 {
    let rough = (max.max(1) + 3) / 4;
    let mut p = 1i64;
    loop {
        for m in [1, 2, 5] {
            if p.saturating_mul(m) >= rough {
                return p.saturating_mul(m);
            }
        }
        if p > i64::MAX / 10 {
            return p;
        }
        p *= 10;
    }
}

impl Chart<'_> {
    /// The largest value the y axis must reach: the tallest stack, or the highest point.
    fn max(&self) -> i64 {
        let n = self.x_labels.len();
        match self.kind {
            Kind::StackedBars => (0..n)
                .map(|i| {
                    self.series
                        .iter()
                        .map(|s| s.values.get(i).copied().unwrap_or(0).max(0))
                        .sum::<i64>()
                })
                .max()
                .unwrap_or(0),
            Kind::Lines => self
                .series
                .iter()
                .flat_map(|s| s.values.iter().copied())
                .max()
                .unwrap_or(0),
        }
    }

    /// The chart as an `<svg>` element.
    pub fn render(&self) -> String {
        let n = self.x_labels.len().max(1) as i64;
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let step = tick_step(self.max());
        let ticks = ((self.max() + step - 1) / step).max(1);
        let top_value = step * ticks;
        let y = |v: i64| {
            TOP + plot_h
                - (i128::from(v.max(0)) * i128::from(plot_h) / i128::from(top_value)) as i64
        };
        let slot = plot_w / n;
        let x_mid = |i: i64| LEFT + slot * i + slot / 2;
        let legend_rows = (self.series.len() as i64 + 3) / 4;
        let height = HEIGHT + legend_rows * 20;

        let mut s = String::new();
        let (tid, did) = (format!("{}-title", self.id), format!("{}-desc", self.id));
        let _ = write!(
            s,
            "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-labelledby=\"{tid} {did}\" \
             viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">\
             <title id=\"{tid}\">{title}</title><desc id=\"{did}\">{desc}</desc>",
            id = escape(self.id),
            tid = escape(&tid),
            did = escape(&did),
            title = escape(self.title),
            desc = escape(self.desc),
        );
        // Grid lines and y tick labels.
        for t in 0..=ticks {
            let v = step * t;
            let yy = y(v);
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" y1=\"{yy}\" x2=\"{}\" y2=\"{yy}\" stroke=\"#dddddd\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#333333\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6,
                yy + 4,
                escape(&(self.format)(v))
            );
        }
        // Axes.
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"#333333\"/>\
             <line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333333\"/>",
            b = TOP + plot_h,
            r = WIDTH - RIGHT
        );
        // X labels: every day, or every n-th day when there are many.
        let every = self.x_labels.len().div_ceil(X_LABELS_MAX).max(1);
        for (i, label) in self.x_labels.iter().enumerate() {
            if i % every != 0 && i + 1 != self.x_labels.len() {
                continue;
            }
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#333333\">{}</text>",
                x_mid(i as i64),
                TOP + plot_h + 16,
                escape(label)
            );
        }
        // The data.
        match self.kind {
            Kind::StackedBars => {
                let bar_w = (slot * 7 / 10).max(1);
                let mut base = vec![0i64; self.x_labels.len()];
                for (k, line) in self.series.iter().enumerate() {
                    let color = PALETTE[k % PALETTE.len()];
                    for (i, v) in line.values.iter().enumerate().take(base.len()) {
                        if *v <= 0 {
                            continue;
                        }
                        let (y0, y1) = (y(base[i]), y(base[i] + v));
                        base[i] += v;
                        let _ = write!(
                            s,
                            "<rect x=\"{}\" y=\"{y1}\" width=\"{bar_w}\" height=\"{}\" fill=\"{color}\">\
                             <title>{}: {} on {}</title></rect>",
                            x_mid(i as i64) - bar_w / 2,
                            (y0 - y1).max(1),
                            escape(line.name),
                            escape(&(self.format)(*v)),
                            escape(&self.x_labels[i]),
                        );
                    }
                }
            }
            Kind::Lines => {
                for (k, line) in self.series.iter().enumerate() {
                    let color = PALETTE[k % PALETTE.len()];
                    let points: Vec<String> = line
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| format!("{},{}", x_mid(i as i64), y(*v)))
                        .collect();
                    let _ = write!(
                        s,
                        "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
                        points.join(" ")
                    );
                    for (i, v) in line.values.iter().enumerate().take(self.x_labels.len()) {
                        let _ = write!(
                            s,
                            "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{color}\"><title>{}: {} on {}</title></circle>",
                            x_mid(i as i64),
                            y(*v),
                            escape(line.name),
                            escape(&(self.format)(*v)),
                            escape(&self.x_labels[i]),
                        );
                    }
                }
            }
        }
        // Legend, four to a row, below the x labels.
        for (k, line) in self.series.iter().enumerate() {
            let (row, col) = (k as i64 / 4, k as i64 % 4);
            let lx = LEFT + col * 160;
            let ly = HEIGHT - 24 + row * 20;
            let _ = write!(
                s,
                "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
                 <text x=\"{}\" y=\"{ly}\" font-size=\"12\" fill=\"#333333\">{}</text>",
                ly - 10,
                PALETTE[k % PALETTE.len()],
                lx + 18,
                escape(line.name)
            );
        }
        if self.series.is_empty() {
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\" fill=\"#333333\">Nothing in this range</text>",
                LEFT + plot_w / 2,
                TOP + plot_h / 2
            );
        }
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(v: i64) -> String {
        v.to_string()
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(0), 1);
        assert_eq!(tick_step(4), 1);
        assert_eq!(tick_step(7), 2);
        assert_eq!(tick_step(19), 5);
        assert_eq!(tick_step(100), 50);
        assert_eq!(tick_step(12_345), 5_000);
    }

    #[test]
    fn a_bar_chart_has_its_title_axes_bars_and_legend() {
        let days = vec!["12-01".to_string(), "12-02".to_string()];
        let series = [
            Line {
                name: "web",
                values: &[3, 1],
            },
            Line {
                name: "phone <IVR>",
                values: &[0, 2],
            },
        ];
        let svg = Chart {
            id: "c1",
            title: "Payments by channel",
            desc: "Payments per day",
            x_labels: &days,
            series: &series,
            kind: Kind::StackedBars,
            format: &count,
        }
        .render();
        assert!(
            svg.starts_with(
                "<svg class=\"chart\" id=\"c1\" role=\"img\" aria-labelledby=\"c1-title c1-desc\""
            ),
            "{svg}"
        );
        assert!(svg.contains("<title id=\"c1-title\">Payments by channel</title>"));
        assert_eq!(
            svg.matches("<rect").count(),
            3 + 2,
            "three bars and two legend keys"
        );
        assert!(svg.contains("phone &lt;IVR&gt;: 2 on 12-02"), "{svg}");
        assert!(
            !svg.contains("style="),
            "no inline style: the CSP forbids it"
        );
        // The tallest stack (3) fits under the top tick.
        assert!(svg.contains(">3</text>"), "{svg}");
    }

    #[test]
    fn an_empty_chart_says_so() {
        let days = vec!["12-01".to_string()];
        let svg = Chart {
            id: "e",
            title: "t",
            desc: "d",
            x_labels: &days,
            series: &[],
            kind: Kind::Lines,
            format: &count,
        }
        .render();
        assert!(svg.contains("Nothing in this range"));
        assert!(svg.ends_with("</svg>"));
    }
}
